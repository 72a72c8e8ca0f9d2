//! `docker events` against `cproxy daemon`: the same events, in the same order, as dockerd
//! 20.10 emits for a foreground run, a detached one with an exec, a stop and the removals
//! (recorded side by side with Debian's dockerd), and Docker's filters.

mod supervisor_support;

use supervisor_support::with_image;

const FORMAT: &str = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} \
                      {{.Actor.Attributes.exitCode}}{{.Actor.Attributes.signal}}";

/// What Debian's dockerd 20.10 printed for the same commands (`<no value>` left out; its
/// `rm ev1 ev2` happened to destroy ev2 first).
const DOCKERD: &str = "container create ev1 
container attach ev1 
network connect bridge 
container start ev1 
container die ev1 2
network disconnect bridge 
container create ev2 
network connect bridge 
container start ev2 
container exec_create: true  ev2 
container exec_start: true  ev2 
container exec_die ev2 0
container kill ev2 15
container kill ev2 9
container die ev2 137
network disconnect bridge 
container stop ev2 
container destroy ev2 
container destroy ev1 
";

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn events_are_dockerds_in_its_order_and_filter_as_its() {
    let ns = supervisor_support::Netns::new();
    let d = with_image(&ns, &[]);
    let since = now().to_string();
    // `sleep` ignores SIGTERM as PID 1: `stop` kills it after its second.
    for args in [
        &["run", "--name", "ev1", "bb", "sh", "-c", "exit 2"][..],
        &["run", "-d", "--name", "ev2", "bb", "sleep", "30"],
        &["exec", "ev2", "true"],
        &["stop", "-t", "1", "ev2"],
        // One at a time: `rm A B` removes them in parallel, in no set order.
        &["rm", "ev2"],
        &["rm", "ev1"],
    ] {
        let (code, _, err) = d.docker(args, None);
        assert!(code == 0 || args[0] == "run" && code == 2, "{args:?}: {err}");
    }
    let until = (now() + 1).to_string();
    let events = |extra: &[&str]| {
        let mut args = vec!["events", "--since", &since, "--until", &until, "--format", FORMAT];
        args.extend(extra);
        let (code, out, err) = d.docker(&args, None);
        assert_eq!(code, 0, "{err}");
        out.replace("<no value>", "")
    };
    assert_eq!(events(&[]), DOCKERD);
    assert_eq!(events(&["--filter", "event=die"]), "container die ev1 2\ncontainer die ev2 137\n");
    let ev1: String = DOCKERD
        .lines()
        .filter(|l| l.ends_with(" ev1 ") || l.contains(" ev1 "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(events(&["--filter", "container=ev1", "--filter", "type=container"]), ev1);
    // dockerd 20.10 ignores a filter it does not know.
    assert_eq!(events(&["--filter", "nosuch=1"]), DOCKERD);
}
