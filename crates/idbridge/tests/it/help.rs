//! `--help` of every subcommand answers, exit 0, with its usage line.

use crate::helpers::*;

#[test]
fn every_subcommand_has_help() {
    let commands: [&[&str]; 14] = [
        &[],
        &["up"],
        &["serve"],
        &["migrate"],
        &["keys"],
        &["keys", "rotate"],
        &["hr"],
        &["hr", "import"],
        &["hr", "send"],
        &["dlq", "list"],
        &["dlq", "replay"],
        &["report"],
        &["webhooks"],
        &["webhooks", "reregister"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let run = run(idbridge(&args), DEADLINE);
        assert_eq!(run.code(), Some(0), "{args:?}: {}", run.stderr);
        let usage = format!("Usage: idbridge {}", command.join(" "));
        assert!(
            run.stdout.contains(usage.trim_end()),
            "{args:?} prints its usage; got:\n{}",
            run.stdout
        );
    }
}

#[test]
fn a_wrong_command_line_exits_2() {
    let run = run(idbridge(&["serve", "no-such-service"]), DEADLINE);
    assert_eq!(run.code(), Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("token-vault"),
        "names the choices: {}",
        run.stderr
    );
}
