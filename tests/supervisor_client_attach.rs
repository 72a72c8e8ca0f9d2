//! cproxy's own client with `run -i`/`-t` and `exec -i`/`-t`, beside Docker's CLI against the
//! same `cproxy daemon`: stdin piped through the hijacked connection, stdout and stderr kept
//! apart, a terminal's raw bytes with `-t`, Docker's refusal of `-it` without a terminal, and
//! the command's exit code. Each case runs with both clients and must print and exit alike.

mod supervisor_support;

use supervisor_support::{Daemon, Netns, with_image};

/// What `cproxy ARGS` and `docker ARGS` did with `stdin`: both the same, and returned.
fn alike(d: &Daemon, args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
    let ours = d.cli_stdin(args, stdin);
    let docker = d.docker(args, stdin);
    let strip = |(code, out, err): &(i32, String, String)| {
        // The clients' names differ in their error lines' prefixes alone.
        (*code, out.clone(), err.replace("docker: ", "").replace("cproxy: ", ""))
    };
    assert_eq!(strip(&ours), strip(&docker), "{args:?}");
    ours
}

#[test]
fn run_i_streams_stdin_to_the_command_and_keeps_its_streams_apart() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    let got = alike(&d, &["run", "-i", "--rm", "bb", "cat"], Some(b"hi\nthere\n"));
    assert_eq!(got, (0, "hi\nthere\n".into(), String::new()));
    let script = "cat; echo err >&2; exit 3";
    let got = alike(&d, &["run", "-i", "--rm", "bb", "sh", "-c", script], Some(b"in\n"));
    assert_eq!(got, (3, "in\n".into(), "err\n".into()));
    // Without `-i`, stdin is not the command's: `cat` reads an empty one.
    let got = alike(&d, &["run", "--rm", "bb", "cat"], Some(b"unread\n"));
    assert_eq!(got, (0, String::new(), String::new()));
    // `--rm`: gone once `run` returned.
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}

#[test]
fn run_t_prints_the_terminals_bytes_and_it_needs_a_terminal_on_stdin() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    let got = alike(&d, &["run", "-t", "--rm", "bb", "echo", "hi"], None);
    assert_eq!(got, (0, "hi\r\n".into(), String::new()));
    let got = alike(&d, &["run", "-it", "--rm", "bb", "true"], Some(b""));
    assert_eq!(got, (1, String::new(), "the input device is not a TTY\n".into()));
    // Refused before anything was created.
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}

#[test]
fn exec_i_streams_stdin_and_exits_with_the_commands_code() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    d.ok(&["run", "-d", "--name", "ex1", "bb", "sleep", "100"]);
    let got = alike(&d, &["exec", "-i", "ex1", "cat"], Some(b"hi\n"));
    assert_eq!(got, (0, "hi\n".into(), String::new()));
    let script = "cat; echo err >&2; exit 5";
    let got = alike(&d, &["exec", "-i", "ex1", "sh", "-c", script], Some(b"in\n"));
    assert_eq!(got, (5, "in\n".into(), "err\n".into()));
    let got = alike(&d, &["exec", "-t", "ex1", "echo", "hi"], None);
    assert_eq!(got, (0, "hi\r\n".into(), String::new()));
    let got = alike(&d, &["exec", "-it", "ex1", "true"], Some(b""));
    assert_eq!(got, (1, String::new(), "the input device is not a TTY\n".into()));
    // Docker 20.10's words for a container its inspect did not find (`wrapResponseError`).
    let missing = (1, String::new(), "Error: No such container: nosuch\n".to_string());
    assert_eq!(alike(&d, &["exec", "-i", "nosuch", "cat"], Some(b"")), missing);
    assert_eq!(alike(&d, &["exec", "nosuch", "cat"], None), missing);
    assert_eq!(alike(&d, &["logs", "nosuch"], None), missing);
}
