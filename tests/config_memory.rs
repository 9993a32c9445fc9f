//! Loading a policy file takes memory proportional to the file: under ten
//! times its size, measured with a counting allocator, and files that would
//! take more (too big, too deep, too many nodes) are refused up front.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use tidewatch::config::{Config, ConfigError};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarding to the system allocator with the same layout.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        ptr
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The tests of this file measure one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The peak bytes allocated (above what was live before) while running `f`.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let out = f();
    (out, PEAK.load(Ordering::SeqCst) - base)
}

/// A realistic policy file of about `bytes`: image policies with ranges,
/// filters and excludes, and updates naming them.
fn big_policy_file(bytes: usize) -> String {
    let mut text = String::from(
        "repository:\n  url: https://github.com/acme/fleet.git\n  branch: main\nimages:\n",
    );
    let mut n = 0;
    while text.len() < bytes * 9 / 10 {
        text.push_str(&format!(
            "  - name: app-{n}\n    image: ghcr.io/acme/team-{}/service-{n}\n    semver: \">=1.2.0 <2.0.0\"\n    exclude: ['-debug$', '-rc[0-9]+$']\n    interval: 5m\n",
            n % 50
        ));
        n += 1;
    }
    text.push_str("updates:\n");
    let mut u = 0;
    while text.len() < bytes {
        text.push_str(&format!(
            "  - name: env-{u}\n    paths: [envs/env-{u}]\n    branch: env-{u}\n    images: [app-{}]\n",
            u % n
        ));
        u += 1;
    }
    text
}

/// One-time costs (the image-reference grammar's regex, compiled on first
/// use; the default excludes) are paid once per process, not per file:
/// pay them first, so the measurement sees what grows with the file.
fn warm_up() {
    Config::from_text("warm.yaml", &big_policy_file(2_000)).unwrap();
}

#[test]
fn a_one_megabyte_policy_file_loads_in_under_ten_times_its_size() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    warm_up();
    let text = big_policy_file(1_000_000);
    let (loaded, peak) = peak_during(|| Config::from_text("big.yaml", &text));
    let config = loaded.unwrap_or_else(|e| panic!("{e}"));
    assert!(config.images.len() > 3_000, "{}", config.images.len());
    let ratio = peak as f64 / text.len() as f64;
    eprintln!(
        "{} bytes, {} image policies: peak {:.1} MiB, {ratio:.1}x the file",
        text.len(),
        config.images.len(),
        peak as f64 / 1048576.0
    );
    assert!(ratio < 10.0, "loading took {ratio:.1}x the file size");
}

#[test]
fn adversarial_shapes_are_refused_without_the_memory() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    warm_up();
    // Deep nesting with long keys: field paths would grow with the square.
    let key = "k".repeat(200);
    let mut deep = String::from("images:\n");
    for depth in 0..2_000 {
        deep.push_str(&"  ".repeat(depth + 1));
        deep.push_str(&format!("{key}{depth}:\n"));
    }
    let (loaded, peak) = peak_during(|| Config::from_text("deep.yaml", &deep));
    match loaded {
        Err(ConfigError::Invalid(d)) => {
            assert!(d[0].message.contains("nested more than 64 levels"), "{d:?}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        peak < deep.len() * 10,
        "peak {peak} for {} bytes",
        deep.len()
    );

    // Many tiny nodes: a flow list of 300,000 one-character items.
    let flat = format!("images: [{}]\n", vec!["1"; 300_000].join(","));
    let (loaded, peak) = peak_during(|| Config::from_text("flat.yaml", &flat));
    match loaded {
        Err(ConfigError::Invalid(d)) => {
            assert!(
                d[0].message.contains("more than 200000 YAML nodes"),
                "{d:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(
        peak < flat.len() * 10,
        "peak {peak} for {} bytes",
        flat.len()
    );
}

#[test]
fn a_file_over_the_cap_is_refused_without_being_read_whole() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    std::fs::write(&path, big_policy_file(3_000_000)).unwrap();
    match Config::load(&path) {
        Err(ConfigError::Invalid(d)) => {
            assert!(d[0].to_string().contains("larger than 1024 KiB"), "{d:?}");
            assert_eq!((d[0].position.line, d[0].position.column), (1, 1));
        }
        other => panic!("{other:?}"),
    }
}
