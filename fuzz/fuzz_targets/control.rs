//! Fuzzes the control-socket protocol of `cproxy forward`: no line may panic the parser, and
//! every command that parses displays as a line that parses back to the same command.

#![no_main]

use cproxy::forward::ControlCommand;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    match line.parse::<ControlCommand>() {
        Ok(cmd) => {
            let shown = cmd.to_string();
            assert_eq!(shown.parse::<ControlCommand>(), Ok(cmd), "{line:?} displays as {shown:?}");
        }
        Err(e) => assert!(!e.is_empty()),
    }
});
