//! `palaver-node`: a headless Palaver node (bootstrap, relay, replica) and a
//! scriptable command-line client of it. Everything but parsing, logging
//! set-up and the exit status lives in `node::headless`; `docs/cli.md`
//! documents the commands.

use std::process::ExitCode;

use clap::Parser;
use node::headless::{Invocation, cli::Cli, logging};

/// mimalloc: the node's paths spend a fifth of their time in the
/// allocator, and it cut the author and receive paths' CPU by about a
/// quarter against glibc's (`docs/benchmarks.md`, third round).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let invocation = match Invocation::prepare(Cli::parse()) {
        Ok(invocation) => invocation,
        Err(failure) => return failure.report().into(),
    };
    logging::init(invocation.log_format(), invocation.default_log_level());
    invocation.execute().into()
}
