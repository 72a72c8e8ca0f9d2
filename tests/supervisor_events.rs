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

/// Now to the nanosecond, as `--since` takes it: what came before (the test image's import)
/// is left out even in the same second.
fn since_now() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

#[test]
fn events_are_dockerds_in_its_order_and_filter_as_its() {
    let ns = supervisor_support::Netns::new();
    let d = with_image(&ns, &[]);
    let since = since_now();
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

/// What Debian's dockerd 20.10 printed for volume and image commands (IDs as `IMG` for the
/// loaded image and `NEW` for the imported one, `C` for the container).
const DOCKERD_VOLUMES_IMAGES: &str = r#"volume create evvol {"driver":"local"}
volume create evvol {"driver":"local"}
volume create evanon {"driver":"local"}
volume mount evvol {"container":"C","destination":"/data","driver":"local","propagation":"","read/write":"true"}
volume mount evanon {"container":"C","destination":"/x","driver":"local","propagation":"","read/write":"true"}
volume unmount evanon {"container":"C","driver":"local"}
volume unmount evvol {"container":"C","driver":"local"}
volume destroy evvol {"driver":"local"}
volume destroy evanon {"driver":"local"}
image tag IMG {"name":"evimg:one"}
image untag IMG {"name":"IMG"}
image save IMG {"name":"IMG"}
image load IMG {"name":"IMG"}
image tag NEW {"name":"evimp:1"}
image import NEW {"name":"NEW"}
image untag NEW {"name":"NEW"}
image delete NEW {"name":"NEW"}
"#;

/// Volume events (create, mount, unmount, destroy) and image events (tag, untag, save, load,
/// import, delete) as dockerd 20.10 sends them, in its order.
#[test]
fn volume_and_image_events_are_dockerds() {
    let ns = supervisor_support::Netns::new();
    let d = with_image(&ns, &[]);
    let since = since_now();
    let saved = ns.dir.join("bb-saved.tar");
    let tar = supervisor_support::rootfs_tar(false, &ns.dir, false);
    let (saved, tar) = (saved.to_str().unwrap(), tar.to_str().unwrap());
    for args in [
        &["volume", "create", "evvol"][..],
        &["run", "--rm", "-v", "evvol:/data", "-v", "evanon:/x", "bb", "true"],
        &["volume", "rm", "evvol", "evanon"],
        &["tag", "bb", "evimg:one"],
        &["rmi", "evimg:one"],
        &["save", "bb", "-o", saved],
        &["load", "-i", saved],
        &["import", tar, "evimp:1"],
        &["rmi", "evimp:1"],
    ] {
        let (code, _, err) = d.docker(args, None);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    let until = (now() + 1).to_string();
    let format = "{{.Type}} {{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}";
    let (code, out, err) = d.docker(
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--format",
            format,
            "--filter",
            "type=volume",
            "--filter",
            "type=image",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let (_, img, _) = d.docker(&["image", "inspect", "-f", "{{.Id}}", "bb"], None);
    let lines: Vec<&str> = out.lines().collect();
    let new =
        lines.iter().find(|l| l.starts_with("image import ")).unwrap().split(' ').nth(2).unwrap();
    let container = out
        .split("\"container\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or("none")
        .to_string();
    let got = out.replace(img.trim(), "IMG").replace(new, "NEW").replace(&container, "C");
    assert_eq!(got, DOCKERD_VOLUMES_IMAGES);
}

/// What Debian's dockerd 20.10 sent for an image with `LABEL a=b` (`IMG`) and a dangling one
/// with `LABEL p=q` (`NEW`), recorded in tests/fixtures/docker-20.10-image-events/events.txt:
/// the labels beside `name` while the image is there, none once it is deleted.
const DOCKERD_LABELED_IMAGES: &str = r#"image tag IMG {"a":"b","name":"lab:2"}
image untag IMG {"a":"b","name":"IMG"}
image save IMG {"a":"b","name":"IMG"}
image untag IMG {"a":"b","name":"IMG"}
image delete IMG {"name":"IMG"}
image load IMG {"a":"b","name":"IMG"}
image import NEW {"name":"NEW","p":"q"}
image delete NEW {"name":"NEW"}
image prune  {"reclaimed":"0"}
"#;

/// Image events carry the image's labels as dockerd's `LogImageEvent` adds them; a prune
/// logs each image's removal, then itself with the bytes reclaimed.
#[test]
fn image_events_carry_the_images_labels_as_dockerds() {
    let ns = supervisor_support::Netns::new();
    let d = with_image(&ns, &["LABEL a=b"]);
    let since = since_now();
    let saved = ns.dir.join("bb-saved.tar");
    let (saved, tar) = (saved.to_str().unwrap(), ns.dir.join("rootfs.tar"));
    for args in [
        &["tag", "bb", "lab:2"][..],
        &["rmi", "lab:2"],
        &["save", "bb", "-o", saved],
        &["rmi", "bb"],
        &["load", "-i", saved],
        &["import", "--change", "LABEL p=q", tar.to_str().unwrap()],
        &["image", "prune", "-f"],
    ] {
        let (code, _, err) = d.docker(args, None);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    let until = (now() + 1).to_string();
    let format = "{{.Type}} {{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}";
    let args = ["events", "--since", &since, "--until", &until, "--format", format];
    let (code, out, err) = d.docker(&args, None);
    assert_eq!(code, 0, "{err}");
    let (_, img, _) = d.docker(&["image", "inspect", "-f", "{{.Id}}", "bb"], None);
    let new = out
        .lines()
        .find(|l| l.starts_with("image import "))
        .and_then(|l| l.split(' ').nth(2))
        .unwrap_or("none");
    assert_eq!(out.replace(img.trim(), "IMG").replace(new, "NEW"), DOCKERD_LABELED_IMAGES);
}
