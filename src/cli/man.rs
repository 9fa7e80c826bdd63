//! `cloudburst man`: the manual page, generated from the command line's
//! own definition (so it cannot drift from `--help`). The RPM ships it.

use clap::CommandFactory;

use super::Cli;

/// Escapes text for roff: backslashes, leading dots and quotes, dashes.
fn esc(s: &str) -> String {
    let mut out = s.replace('\\', "\\e").replace('-', "\\-");
    if out.starts_with('.') || out.starts_with('\'') {
        out.insert_str(0, "\\&");
    }
    out
}

pub fn page() -> String {
    let cmd = Cli::command();
    let mut o = String::new();
    o.push_str(&format!(
        ".TH CLOUDBURST 1 \"\" \"cloudburst {}\" \"User Commands\"\n",
        env!("CARGO_PKG_VERSION")
    ));
    o.push_str(".SH NAME\ncloudburst \\- ");
    o.push_str(&esc(&cmd
        .get_about()
        .map(|a| a.to_string())
        .unwrap_or_default()));
    o.push_str("\n.SH SYNOPSIS\n.B cloudburst\n.I command\n[\\fIoptions\\fR]\n");
    o.push_str(".SH DESCRIPTION\n");
    o.push_str("cloudburst watches an HTCondor pool's queue for idle jobs marked for the cloud, boots pilot VMs that join the pool as cloud\\-tagged startds, and retires them when the queue drains, without killing running work or leaking a VM. The agent runs as the systemd service \\fBcloudburst.service\\fR with \\fI/etc/cloudburst/cloudburst.toml\\fR.\n");
    o.push_str(".SH COMMANDS\n");
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "man" {
            continue;
        }
        o.push_str(&format!(".SS {}\n", esc(sub.get_name())));
        if let Some(a) = sub.get_about() {
            o.push_str(&format!("{}\n", esc(&a.to_string())));
        }
        let nested: Vec<_> = sub.get_subcommands().collect();
        for n in nested {
            o.push_str(&format!(
                ".TP\n.B {} {}\n{}\n",
                esc(sub.get_name()),
                esc(n.get_name()),
                esc(&n.get_about().map(|a| a.to_string()).unwrap_or_default())
            ));
        }
        for arg in sub.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "help" || long == "version" {
                continue;
            }
            let value = if arg.get_action().takes_values() {
                format!(
                    " \\fI{}\\fR",
                    esc(&arg
                        .get_value_names()
                        .and_then(|v| v.first())
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| long.to_uppercase()))
                )
            } else {
                String::new()
            };
            o.push_str(&format!(
                ".TP\n\\fB\\-\\-{}\\fR{value}\n{}\n",
                esc(long),
                esc(&arg.get_help().map(|h| h.to_string()).unwrap_or_default())
            ));
        }
    }
    o.push_str(".SH EXIT STATUS\n0 success; 1 the command ran and found a problem (the message says what and where); 2 bad usage.\n");
    o.push_str(".SH FILES\n.TP\n/etc/cloudburst/cloudburst.toml\nthe configuration\n.TP\n/var/lib/cloudburst/registry.db\nthe node registry (SQLite, mode 0600)\n.TP\n/var/lib/cloudburst/status.json\nthe last cycle, for \\fBcloudburst status\\fR\n.TP\n/usr/share/cloudburst/condor\\-config/\nHTCondor configuration for the central manager, schedds and pilot images\n");
    o.push_str(".SH SEE ALSO\n\\fBcondor_q\\fR(1), \\fBcondor_status\\fR(1), \\fBcondor_drain\\fR(1), \\fBsystemctl\\fR(1)\n");
    o
}
