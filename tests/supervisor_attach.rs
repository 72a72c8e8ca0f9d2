//! Docker's own CLI runs containers in the foreground, with stdin and terminals, and execs
//! into them, against `cproxy daemon`: attach (hijacked, Docker's frames or a terminal's raw
//! bytes), `wait` with its conditions, the exec API. What each case prints and exits with is
//! Docker 20.10's, recorded in tests/fixtures/docker-20.10-attach/cli.txt.

mod supervisor_support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use supervisor_support::{Daemon, Netns, python, with_image};

fn docker(d: &Daemon, args: &[&str]) -> (i32, String, String) {
    d.docker(args, None)
}

#[test]
fn run_in_the_foreground_prints_both_streams_and_exits_with_the_commands_code() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    let (code, out, err) =
        docker(&d, &["run", "--rm", "bb", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!((code, out.as_str(), err.as_str()), (3, "out\n", "err\n"));
    // `--rm`: gone once `run` returns (it waits for `condition=removed`).
    let (code, out, _) = docker(&d, &["ps", "-aq"]);
    assert_eq!((code, out.as_str()), (0, ""));
    // Every byte of a long output arrives: a client that reads slower than the command
    // writes holds the command back rather than losing output.
    let (code, out, err) = docker(&d, &["run", "--rm", "bb", "sh", "-c", "yes | head -c 3000000"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.len(), 3_000_000);
    assert!(out.lines().all(|l| l == "y"));
    // The log has it too, as `docker logs` reads it.
    let (code, _, err) = docker(&d, &["run", "--name", "c3", "bb", "sh", "-c", "echo a; echo b"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(docker(&d, &["logs", "c3"]).1, "a\nb\n");
}

#[test]
fn stdin_reaches_the_command_only_with_i() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    let (code, out, err) = d.docker(&["run", "-i", "--rm", "bb", "cat"], Some(b"piped\n"));
    assert_eq!((code, out.as_str()), (0, "piped\n"), "{err}");
    // Without -i the command's stdin is /dev/null: it reads its end at once.
    let (code, out, err) = d.docker(&["run", "--rm", "bb", "cat"], Some(b"piped\n"));
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    // `inspect` shows what was asked.
    d.docker(&["create", "-i", "--name", "i1", "bb", "cat"], None);
    let (_, out, _) = docker(
        &d,
        &["inspect", "-f", "{{.Config.OpenStdin}} {{.Config.StdinOnce}} {{.Config.Tty}}", "i1"],
    );
    assert_eq!(out.trim(), "true true false");
}

#[test]
fn t_gives_the_command_a_terminal_of_the_containers_own() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    // One raw stream, newlines as a terminal writes them.
    let (code, out, err) =
        docker(&d, &["run", "--rm", "-t", "bb", "sh", "-c", "echo a; echo b >&2; tty"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "a\r\nb\r\n/dev/pts/0\r\n", ""));
    // Interactive: a shell on a terminal, driven as a person would.
    let (out, code) = interactive(&d, &["run", "-it", "--rm", "bb", "sh"]);
    assert_eq!(code, 7, "{out}");
    assert!(out.contains("hi-3\r\n"), "{out}");
    assert!(out.contains("/ # "), "{out}");
}

#[test]
fn a_command_that_cannot_run_fails_the_start_in_dockers_words() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    let (code, _, err) = docker(&d, &["run", "--rm", "bb", "nosuchcmd"]);
    assert_eq!(code, 127, "{err}");
    assert!(
        err.contains(
            "docker: Error response from daemon: failed to create shim task: OCI runtime create \
             failed: runc create failed: unable to start container process: exec: \"nosuchcmd\": \
             executable file not found in $PATH: unknown"
        ),
        "{err}"
    );
    // `--rm` removed it, as dockerd does.
    assert_eq!(docker(&d, &["ps", "-aq"]).1, "");
    let (code, _, _) = docker(&d, &["run", "--name", "kept", "bb", "nosuchcmd"]);
    assert_eq!(code, 127);
    let (_, out, _) =
        docker(&d, &["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "kept"]);
    assert_eq!(out.trim(), "created 127");
}

#[test]
fn exec_runs_in_the_container_with_its_streams_and_exit_code() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    let (code, _, err) = docker(&d, &["run", "-d", "--name", "c1", "bb", "sleep", "100"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = docker(&d, &["exec", "c1", "sh", "-c", "echo e; echo f >&2; exit 4"]);
    assert_eq!((code, out.as_str()), (4, "e\n"));
    let (code, out, _) = d.docker(&["exec", "-i", "c1", "cat"], Some(b"in\n"));
    assert_eq!((code, out.as_str()), (0, "in\n"));
    let (code, out, _) = docker(&d, &["exec", "-t", "c1", "tty"]);
    assert_eq!((code, out.as_str()), (0, "/dev/pts/0\r\n"));
    let (code, out, _) =
        docker(&d, &["exec", "-w", "/tmp", "-e", "A=1", "c1", "sh", "-c", "pwd; echo $A"]);
    assert_eq!((code, out.as_str()), (0, "/tmp\n1\n"));
    let (code, out, _) = docker(&d, &["exec", "c1", "nosuchcmd"]);
    assert_eq!(code, 126);
    assert_eq!(
        out,
        "OCI runtime exec failed: exec failed: unable to start container process: exec: \
         \"nosuchcmd\": executable file not found in $PATH: unknown\r\n"
    );
    let (code, out, _) = docker(&d, &["exec", "-u", "nosuchuser", "c1", "id"]);
    assert_eq!(
        (code, out.as_str()),
        (126, "unable to find user nosuchuser: no matching entries in passwd file\r\n")
    );
    let (out, code) = interactive(&d, &["exec", "-it", "c1", "sh"]);
    assert_eq!(code, 7, "{out}");
    assert!(out.contains("hi-3\r\n"), "{out}");
    let (code, _, err) = docker(&d, &["exec", "nosuch", "ls"]);
    // 20.10's client words it so; newer ones print the daemon's answer.
    assert_eq!(code, 1);
    assert!(
        [
            "Error: No such container: nosuch\n",
            "Error response from daemon: No such container: nosuch\n"
        ]
        .contains(&err.as_str()),
        "{err}"
    );
    docker(&d, &["stop", "-t", "1", "c1"]);
    let (code, _, err) = docker(&d, &["exec", "c1", "ls"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("Error response from daemon: Container ")
            && err.ends_with(" is not running\n"),
        "{err}"
    );
}

#[test]
fn start_a_and_attach_follow_a_run_as_dockers_do() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    docker(&d, &["create", "--name", "c2", "bb", "sh", "-c", "echo hi; exit 5"]);
    let (code, out, _) = docker(&d, &["start", "-a", "c2"]);
    assert_eq!((code, out.as_str()), (5, "hi\n"));
    let (code, _, err) = docker(&d, &["attach", "c2"]);
    assert_eq!(
        (code, err.as_str()),
        (1, "You cannot attach to a stopped container, start it first\n")
    );
}

#[test]
fn wait_answers_at_once_and_then_on_its_condition() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    let id =
        docker(&d, &["create", "--name", "wt", "bb", "sh", "-c", "exit 3"]).1.trim().to_string();
    // A created container is not running: `not-running` answers at once.
    let (status, body) = d.api("POST", &format!("/containers/{id}/wait"), None).unwrap();
    assert_eq!((status, body.contains(r#"{"Error":null,"StatusCode":0}"#)), (200, true), "{body}");
    // `next-exit`, asked before the start, gets the head now and the code after the run.
    let mut next = UnixStream::connect(d.socket()).unwrap();
    next.write_all(
        format!("POST /containers/{id}/wait?condition=next-exit HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut head = [0u8; 12];
    next.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let (status, _) = d.api("POST", &format!("/containers/{id}/start"), None).unwrap();
    assert_eq!(status, 204);
    next.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut rest = String::new();
    next.read_to_string(&mut rest).unwrap();
    assert!(rest.contains(r#"{"Error":null,"StatusCode":3}"#), "{rest}");
    // `removed`.
    let mut removed = UnixStream::connect(d.socket()).unwrap();
    removed
        .write_all(
            format!("POST /containers/{id}/wait?condition=removed HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    removed.read_exact(&mut head).unwrap();
    assert_eq!(docker(&d, &["rm", "wt"]).0, 0);
    removed.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut rest = String::new();
    removed.read_to_string(&mut rest).unwrap();
    assert!(rest.contains(r#"{"Error":null,"StatusCode":3}"#), "{rest}");
}

/// Drives `docker ARGS` on a terminal as a person would: waits for the shell, types
/// `echo hi-$((1+2))` and `exit 7`; what the terminal showed and the exit code.
fn interactive(d: &Daemon, args: &[&str]) -> (String, i32) {
    on_a_terminal(d, &supervisor_support::docker_bin(), args, b"exit 7\r")
}

/// Runs `program ARGS` on a terminal: waits for the shell's prompt, types
/// `echo hi-$((1+2))`, then `last` (`exit 7`, or detach keys); what the terminal showed and
/// the exit code.
fn on_a_terminal(d: &Daemon, program: &str, args: &[&str], last: &[u8]) -> (String, i32) {
    on_a_sized_terminal(d, program, args, last, None)
}

/// [`on_a_terminal`], on a terminal of `size` (rows, columns) if given, the shell then asked
/// for its own terminal's size in the same line (`echo hi-3 ROWS COLS`).
fn on_a_sized_terminal(
    d: &Daemon,
    program: &str,
    args: &[&str],
    last: &[u8],
    size: Option<(u16, u16)>,
) -> (String, i32) {
    let script = r##"
import fcntl, os, pty, select, struct, sys, termios, time
last = bytes.fromhex(sys.argv[2])
size = sys.argv[3]
pid, fd = pty.fork()
if pid == 0:
    if size != "-":
        rows, cols = size.split()
        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", int(rows), int(cols), 0, 0))
    os.execv(sys.argv[1], ["docker"] + sys.argv[4:])
out = b""
def read_until(want, limit):
    global out
    end = time.time() + limit
    while want not in out and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return
            if not data:
                return
            out += data
read_until(b"# ", 30)
if size == "-":
    os.write(fd, b"echo hi-$((1+2))\r")
    read_until(b"hi-3\r\n", 30)
else:
    os.write(fd, b"echo hi-$((1+2)) $(stty size)\r")
    read_until(b"hi-3 " + size.encode() + b"\r\n", 30)
os.write(fd, last)
read_until(b"\x00", 5)
_, status = os.waitpid(pid, 0)
sys.stdout.write(repr(out) + "\n" + str(os.waitstatus_to_exitcode(status)) + "\n")
"##;
    let out = std::process::Command::new(python())
        .env("DOCKER_HOST", &d.host)
        .env("DOCKER_CONFIG", std::env::temp_dir().join("cproxy-test-docker-config"))
        .arg("-c")
        .arg(script)
        .arg(program)
        .arg(last.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .arg(size.map_or("-".to_string(), |(rows, cols)| format!("{rows} {cols}")))
        .env("CPROXY_HOST", &d.host)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let shown = lines.next().unwrap_or_default().replace("\\r", "\r").replace("\\n", "\n");
    let code = lines.next().and_then(|c| c.parse().ok()).unwrap_or(-1);
    (shown, code)
}

/// The detach keys leave a terminal session with the container running: Docker's CLI and
/// cproxy's watch for them in what they send (`ctrl-p,ctrl-q`, or `--detach-keys`), and exit
/// 0 at once; with `--rm` the daemon removes the container when it later exits. The daemon
/// also watches a terminal's input (for clients that do not): a raw attach that sends the keys
/// is ended, the `detach` event said, and the shell is still there for the next attach. Bad
/// keys get dockerd's words.
#[test]
fn detach_keys_leave_the_container_running() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    let running = |name: &str| {
        let (_, out, _) = docker(&d, &["inspect", "-f", "{{.State.Running}}", name]);
        out.trim() == "true"
    };
    let (shown, code) = on_a_terminal(
        &d,
        &supervisor_support::docker_bin(),
        &["run", "-it", "--name", "k1", "bb", "sh"],
        b"\x10\x11",
    );
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("hi-3"), "{shown}");
    assert!(running("k1"));

    let cproxy = supervisor_support::BIN;
    let args = ["run", "-it", "--rm", "--name", "k2", "bb", "sh"];
    let (shown, code) = on_a_terminal(&d, cproxy, &args, b"\x10\x11");
    assert_eq!(code, 0, "{shown}");
    assert!(running("k2"), "{shown}");
    // Keys of one's own: ctrl-x then y.
    let args = ["run", "-it", "--detach-keys", "ctrl-x,y", "--name", "k3", "bb", "sh"];
    let (shown, code) = on_a_terminal(&d, cproxy, &args, b"\x18y");
    assert_eq!(code, 0, "{shown}");
    assert!(running("k3"), "{shown}");
    let args = ["exec", "-it", "k3", "sh"];
    let (shown, code) = on_a_terminal(&d, cproxy, &args, b"\x10\x11");
    assert_eq!(code, 0, "{shown}");

    // The daemon's own watch, on a raw attach to k1's terminal.
    let unix_now =
        || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let since = unix_now().to_string();
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
    s.write_all(
        b"POST /containers/k1/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\n\
          Content-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\
          Content-Length: 0\r\n\r\n",
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    s.write_all(b"echo raw-$((2+2))\r").unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("raw-4\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    s.write_all(&[0x10, 0x11]).unwrap();
    // The daemon ends the session: what is left to read ends.
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(running("k1"));
    let until = (unix_now() + 1).to_string();
    let format = "{{.Action}} {{.Actor.Attributes.name}}";
    let args = [
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "event=detach",
        "--format",
        format,
    ];
    let (_, listed, _) = docker(&d, &args);
    assert_eq!(listed, "detach k1\n");

    let body = r#"{"Cmd":["true"],"DetachKeys":"ctrl-1"}"#;
    let (status, reply) = d.api("POST", "/v1.41/containers/k1/exec", Some(body)).unwrap();
    assert_eq!(
        (status, reply.trim()),
        (500, r#"{"message":"Invalid escape keys (ctrl-1) provided"}"#)
    );
    let (status, reply) = d
        .api("POST", "/v1.41/containers/k1/attach?stream=1&stdout=1&detachKeys=ctrl-1", None)
        .unwrap();
    assert_eq!(
        (status, reply.trim()),
        (400, r#"{"message":"Invalid detach keys (ctrl-1) provided"}"#)
    );

    // k2 was run with --rm: stopped, the daemon removes it.
    assert_eq!(docker(&d, &["stop", "-t", "1", "k2"]).0, 0);
    supervisor_support::eventually(10, || (docker(&d, &["inspect", "k2"]).0 != 0).then_some(()));
    assert_eq!(docker(&d, &["rm", "-f", "k1", "k3"]).0, 0);
}

/// With `-t`, the process's terminal has the size of ours, as Docker's CLI gives it (`resize`
/// after the start): the shell's `stty size` says it, through `run -it` and `exec -it`, from
/// cproxy's client and Docker's.
#[test]
fn the_terminal_has_the_clients_size() {
    let ns = Netns::new();
    let d = with_image(&ns, &[]);
    let cproxy = supervisor_support::BIN;
    let docker_cli = supervisor_support::docker_bin();
    let runs: [(&str, &[&str]); 2] = [
        (cproxy, &["run", "-it", "--name", "s1", "bb", "sh"]),
        (&docker_cli, &["run", "-it", "--name", "s2", "bb", "sh"]),
    ];
    for (program, args) in runs {
        let (shown, code) = on_a_sized_terminal(&d, program, args, b"exit 7\r", Some((33, 111)));
        assert_eq!(code, 7, "{program}: {shown}");
        assert!(shown.contains("hi-3 33 111\r\n"), "{program}: {shown}");
    }
    d.ok(&["run", "-d", "--name", "s3", "bb", "sleep", "600"]);
    let args = ["exec", "-it", "s3", "sh"];
    let (shown, code) = on_a_sized_terminal(&d, cproxy, &args, b"exit 5\r", Some((21, 77)));
    assert_eq!(code, 5, "{shown}");
    assert!(shown.contains("hi-3 21 77\r\n"), "{shown}");
    assert_eq!(docker(&d, &["rm", "-f", "s1", "s2", "s3"]).0, 0);
}
