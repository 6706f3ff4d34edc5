//! `palaver-node`: a headless Palaver node (bootstrap, relay, replica) and a
//! scriptable command-line client of it. Everything but parsing, logging
//! set-up and the exit status lives in `node::headless`; `docs/cli.md`
//! documents the commands.

use std::process::ExitCode;

use clap::Parser;
use node::headless::{Invocation, cli::Cli, logging};

fn main() -> ExitCode {
    let invocation = match Invocation::prepare(Cli::parse()) {
        Ok(invocation) => invocation,
        Err(failure) => return failure.report().into(),
    };
    logging::init(invocation.log_format(), invocation.default_log_level());
    invocation.execute().into()
}
