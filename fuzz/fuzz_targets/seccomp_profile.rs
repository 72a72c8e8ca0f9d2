//! Fuzzes `cproxy::supervisor::os::seccomp`: `--security-opt seccomp=` profiles. None may panic;
//! whatever reads compiles, for a container with and without CAP_SYS_ADMIN and on an old and a
//! new kernel, into a program the kernel would take (at most 4096 instructions, every path ends
//! in a return) or an error in words; and a profile reads back from its own JSON.

#![no_main]

use cproxy::supervisor::os::seccomp::{self, Profile};
use libfuzzer_sys::fuzz_target;

/// Syscall numbers to run the programs on: the common ones, both ends, and x32's.
const NUMBERS: [u32; 10] = [0, 1, 2, 39, 56, 135, 165, 435, 999, 0x4000_0027];

fuzz_target!(|data: &[u8]| {
    let Ok(profile) = Profile::from_json(data) else {
        return;
    };
    let json = serde_json::to_vec(&profile).expect("a profile serializes");
    assert_eq!(Profile::from_json(&json).as_ref(), Ok(&profile));
    for (caps, kernel) in [(&[][..], (6, 1)), (&["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"][..], (3, 10))] {
        let Ok(prog) = seccomp::compile(&profile, caps, kernel) else {
            continue;
        };
        assert!(prog.len() <= 4096);
        for nr in NUMBERS {
            for arg in [0, 1, 0x7e02_0000, 0xffff_ffff, u64::MAX] {
                if let Err(e) = seccomp::evaluate(&prog, nr, [arg; 6]) {
                    panic!("syscall {nr} ({arg:#x}): {e}");
                }
            }
        }
    }
});
