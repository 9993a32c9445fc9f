//! The git workspace of a cycle, driven from async code.
//!
//! libgit2 and the file edits are blocking, so every use goes through
//! [`WorkspaceHandle::run`], which moves the workspace onto a blocking
//! thread (`spawn_blocking`) and back. The async workers, which also serve
//! `/healthz`, never wait on git.
//!
//! Every blocking task also holds the engine's git gate (shared through an
//! `Arc`). A cycle abandoned at its deadline stops awaiting its git task,
//! but the task itself runs on until libgit2 returns; the gate stays taken
//! until then, so the next cycle never touches the clone while it is in use.

use std::sync::Arc;

use tokio::sync::OwnedMutexGuard;

use crate::git::{GitStats, Workspace, WorkspaceOptions};

use super::EngineError;

pub struct WorkspaceHandle {
    /// Why the clone was made afresh during this cycle.
    pub reclones: Vec<String>,
    /// Behind a mutex only so the handle is `Sync` (a libgit2 repository is
    /// not); it is never contended: `run` takes `&mut self`.
    inner: std::sync::Mutex<Option<Workspace>>,
    stats: GitStats,
    gate: Arc<OwnedMutexGuard<()>>,
}

impl WorkspaceHandle {
    /// Opens (cloning, or re-cloning an unusable clone, if needed) and
    /// fetches, holding `gate` until the last git task of the cycle ends.
    pub async fn open(
        options: WorkspaceOptions,
        gate: OwnedMutexGuard<()>,
    ) -> Result<WorkspaceHandle, EngineError> {
        let gate = Arc::new(gate);
        let held = gate.clone();
        let workspace = tokio::task::spawn_blocking(move || {
            let _held = held;
            let mut workspace = Workspace::open(options)?;
            workspace.fetch()?;
            Ok::<_, EngineError>(workspace)
        })
        .await
        .map_err(|e| EngineError::Task(e.to_string()))??;
        Ok(WorkspaceHandle {
            reclones: workspace.reclone_reasons().to_vec(),
            stats: workspace.stats(),
            inner: std::sync::Mutex::new(Some(workspace)),
            gate,
        })
    }

    /// Runs `work` on the workspace on a blocking thread. If `work`
    /// panicked, the workspace is gone for the rest of the cycle and every
    /// later call says so.
    pub async fn run<T, F>(&mut self, work: F) -> Result<T, EngineError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Workspace) -> T + Send + 'static,
    {
        let slot = self.inner.get_mut().unwrap_or_else(|p| p.into_inner());
        let mut workspace = slot.take().ok_or_else(|| {
            EngineError::Task("the git workspace was lost earlier in this cycle".into())
        })?;
        let held = self.gate.clone();
        let (workspace, result) = tokio::task::spawn_blocking(move || {
            let _held = held;
            let result = work(&mut workspace);
            (workspace, result)
        })
        .await
        .map_err(|e| EngineError::Task(format!("a git task failed: {e}")))?;
        self.stats = workspace.stats();
        self.reclones = workspace.reclone_reasons().to_vec();
        *self.inner.get_mut().unwrap_or_else(|p| p.into_inner()) = Some(workspace);
        Ok(result)
    }

    /// Network operations made so far.
    pub fn stats(&self) -> GitStats {
        self.stats
    }
}
