//! Unit tests of the path checks.

use super::unsafe_path;

#[test]
fn paths_must_stay_inside_the_repository() {
    assert_eq!(unsafe_path("envs/dev"), None);
    assert_eq!(unsafe_path("./envs/dev"), None);
    assert_eq!(unsafe_path("."), None);
    assert!(unsafe_path("/etc").is_some());
    assert!(unsafe_path("../other").is_some());
    assert!(unsafe_path("envs/../../x").is_some());
    assert!(unsafe_path("C:\\x").is_some());
    assert!(unsafe_path("").is_some());
}
