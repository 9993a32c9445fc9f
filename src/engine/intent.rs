//! What the plan decided for one update group (or one pull-request head),
//! and the words that describe it. Dry runs print [`Intent::describe`], and
//! reports use the same words, so what a dry run promises is what a real
//! cycle says it did.

use std::collections::HashMap;

use crate::policy::Pick;

#[derive(Clone, Debug, PartialEq)]
pub enum Intent {
    /// Git already holds every known pick.
    Nothing,
    Commit(CommitIntent),
    OpenOrUpdatePr(PrIntent),
    ClosePr(CloseIntent),
    /// Leave the pull request (and its branch) exactly as it is.
    Hold(HoldIntent),
    /// An input this intent needs could not be observed.
    Fail {
        error: String,
    },
}

/// A direct commit of the known picks to `branch`.
#[derive(Clone, Debug, PartialEq)]
pub struct CommitIntent {
    pub branch: String,
    /// Where `branch` starts from when it does not exist yet.
    pub base: String,
    /// The picks to write; on a push race they are re-applied to the new tip.
    pub picks: HashMap<String, Pick>,
    pub message: String,
}

/// Open a pull request, or bring the open one up to date.
#[derive(Clone, Debug, PartialEq)]
pub struct PrIntent {
    pub head: String,
    pub base: String,
    /// The picks of every policy the head covers (all of them known).
    pub picks: HashMap<String, Pick>,
    pub message: String,
    pub title: String,
    pub body: String,
    /// The open pull request, if any, and whether its title and body
    /// already say this.
    pub existing: Option<ExistingPr>,
    /// The head branch's tip as observed: it is overwritten only if still
    /// there (so a push by someone else in between is not lost).
    pub head_tip: Option<String>,
    pub labels: Vec<String>,
    pub reviewers: Vec<String>,
    pub team_reviewers: Vec<String>,
    pub assignees: Vec<String>,
    pub draft: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExistingPr {
    pub number: u64,
    pub text_matches: bool,
}

/// Close an open pull request that has nothing left to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseIntent {
    pub number: u64,
    pub head: String,
    /// The title as it is now (kept when the body is marked).
    pub title: String,
    /// The body as it is now; its hidden block is marked as closed by
    /// tidewatch before closing, so the close never counts as a decline.
    pub body: String,
    pub reason: String,
    /// Delete the head branch after closing (not when it holds commits
    /// someone else made).
    pub delete_branch: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldIntent {
    pub reason: String,
    /// The open pull request being held, if any.
    pub number: Option<u64>,
    /// A comment to post once on the pull request.
    pub comment: Option<HeldComment>,
}

/// A comment to post once on a held pull request, and the title and body
/// it then keeps: the body records that the comment was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldComment {
    pub text: String,
    pub title: String,
    pub body: String,
}

impl Intent {
    /// One line, in the words reports and dry runs share.
    pub fn describe(&self) -> String {
        match self {
            Intent::Nothing => "nothing to do: Git holds every pick".to_string(),
            Intent::Commit(c) => {
                let subject = c.message.lines().next().unwrap_or_default();
                format!("commit to {}: {subject}", c.branch)
            }
            Intent::OpenOrUpdatePr(p) => match &p.existing {
                None => format!("open a PR from {} into {}: {}", p.head, p.base, p.title),
                Some(pr) if pr.text_matches => format!(
                    "keep PR #{} from {} into {} up to date: {}",
                    pr.number, p.head, p.base, p.title
                ),
                Some(pr) => format!(
                    "update PR #{} from {} into {}: {}",
                    pr.number, p.head, p.base, p.title
                ),
            },
            Intent::ClosePr(c) => format!(
                "close PR #{}{}: {}",
                c.number,
                if c.delete_branch {
                    format!(" and delete {}", c.head)
                } else {
                    String::new()
                },
                c.reason
            ),
            Intent::Hold(h) => match h.number {
                Some(number) => format!("hold PR #{number} as it is: {}", h.reason),
                None => format!("hold: {}", h.reason),
            },
            Intent::Fail { error } => format!("cannot act: {error}"),
        }
    }
}
