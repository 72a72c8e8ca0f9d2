//! `cproxy-docker-proxy`, docker-proxy mode alone (the program for dockerd's
//! `userland-proxy-path`), driven as dockerd drives docker-proxy: the same contract, test for
//! test, as `cproxy` without a subcommand (tests/docker_proxy_contract/contract.rs).

mod common;

/// The program under test.
const CPROXY: &str = env!("CARGO_BIN_EXE_cproxy-docker-proxy");

include!("docker_proxy_contract/contract.rs");

#[test]
fn its_help_is_docker_proxys_flags_alone() {
    let out = std::process::Command::new(CPROXY).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--proto", "--host-ip", "--host-port", "--container-ip", "--container-port"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    assert!(help.contains("userland-proxy-path"), "{help}");
    assert!(!help.contains("resumed-from-lease"), "an internal flag is shown:\n{help}");
    // cproxy's own commands are not in it: `forward` is a stray argument here.
    let out = std::process::Command::new(CPROXY).args(["forward", "--to", "127.0.0.1"]).output();
    assert_eq!(out.unwrap().status.code(), Some(2));
}
