//! `p2pd-repl`: the command line. Parses arguments, picks a mode (REPL, script file,
//! one-shot `-e`, stdin script) and maps the outcome to an exit code. Everything
//! else lives in the `p2pd` library.

use clap::{Parser, Subcommand};
use p2pd::net::config::StunConfig;
use p2pd::net::stun::{DEFAULT_TCP_MAX_CONNECTIONS, DEFAULT_TCP_TIMEOUT, ServerConfig, StunServer};
use p2pd::repl::{self, ReplOptions};
use p2pd::script::limits::Limits;
use p2pd::script::{Cancel, Session, SessionOptions, Sink, StdSink};
use std::io::{IsTerminal, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Exit codes, as documented in `--help`.
mod exit {
    pub const OK: i32 = 0;
    pub const SCRIPT_ERROR: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const INTERRUPTED: i32 = 130;
}

const EXAMPLES: &str = "\
Examples:
  p2pd-repl                          open the REPL
  p2pd-repl --tour                   open the REPL on a guided tour of P2PD's Basics
  p2pd-repl --offline scripts/google.rhai
                                     run a script against the local world, no internet
  p2pd-repl scripts/google.rhai      run a script
  p2pd-repl script.rhai a b          run a script; it sees ARGS == [\"a\", \"b\"]
  p2pd-repl -e 'print(1 + 1)'        run one piece of code
  echo 'print(1)' | p2pd-repl        run stdin as a script
  p2pd-repl --stun 127.0.0.1:3478    use this STUN server (repeatable; or P2PD_STUN=a,b)
  p2pd-repl --stun-list FILE         use a server list (format of data/stun_servers.txt)
  p2pd-repl --limit memory=4000000000 script.rhai
                                     raise a limit (memory, call_depth, operations, string,
                                     array, map, nesting; see limits() in the shell)
  p2pd-repl stun-server 127.0.0.1:3478 127.0.0.2:3479
                                     run the built-in RFC 5780 STUN server
                                     (--tcp-timeout SECS, --max-connections N)
  p2pd-repl netcheck [--json]        one report: addresses, NAT, port mapping

Exit codes: 0 ok, 1 script error, 2 usage error, 130 interrupted (Ctrl-C).";

#[derive(Parser, Debug)]
#[command(
    name = "p2pd-repl",
    version,
    about = "P2PD's basics (interfaces, routes, STUN, NAT, pipes) in an async Rhai shell",
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// STUN server HOST:PORT to use instead of the defaults (repeatable; overrides P2PD_STUN).
    #[arg(long = "stun", value_name = "HOST:PORT")]
    stun: Vec<String>,

    /// A STUN server list file in the format of data/stun_servers.txt, instead of the
    /// built-in list (or set P2PD_STUN_LIST; --stun and P2PD_STUN take precedence).
    #[arg(long = "stun-list", value_name = "FILE")]
    stun_list: Option<PathBuf>,

    /// Raise or lower one of the engine's limits: memory, string, array, map, nesting,
    /// call_depth or operations (repeatable; e.g. --limit string=500000000).
    #[arg(long = "limit", value_name = "NAME=N")]
    limit: Vec<String>,

    /// Run CODE instead of a file or the REPL.
    #[arg(
        short = 'e',
        long = "eval",
        value_name = "CODE",
        conflicts_with = "file"
    )]
    eval: Option<String>,

    /// Turn colour off (so does the NO_COLOR environment variable).
    #[arg(long)]
    no_color: bool,

    /// Use a local world instead of the internet: the built-in STUN server on 127.0.0.1 and
    /// 127.0.0.2, and a web stand-in for www.google.com (see hosts()).
    #[arg(long)]
    offline: bool,

    /// Open the REPL on the guided tour of P2PD's Basics tutorial (offline by itself when
    /// no STUN server answers).
    #[arg(long, conflicts_with_all = ["eval", "file"])]
    tour: bool,

    /// Script to run; without one, the REPL opens (or stdin runs, if it is not a terminal).
    file: Option<PathBuf>,

    /// Arguments passed to the script as ARGS.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the built-in STUN server (UDP and TCP) until Ctrl-C. With two addresses it
    /// listens on both IPs x both ports and honours CHANGE-REQUEST (RFC 5780).
    StunServer {
        /// Primary IP:PORT.
        primary: SocketAddr,
        /// Alternate IP:PORT (a different IP and a different port).
        alternate: Option<SocketAddr>,
        /// Seconds a TCP connection may wait for a request to start, and again for it to
        /// complete, before it is closed.
        #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TCP_TIMEOUT.as_secs_f64(),
              value_parser = tcp_timeout)]
        tcp_timeout: f64,
        /// Most TCP connections open at once; past it the one idle longest is closed.
        #[arg(long, value_name = "N", default_value_t = DEFAULT_TCP_MAX_CONNECTIONS as u32,
              value_parser = clap::value_parser!(u32).range(1..))]
        max_connections: u32,
    },
    /// Start the default interface and print one report: external addresses per
    /// family, NAT type and RFC 4787 behaviour, hairpinning, port mapping (UPnP,
    /// NAT-PMP, PCP) and STUN server RTTs.
    Netcheck {
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
        /// STUN server HOST:PORT (repeatable; overrides P2PD_STUN).
        #[arg(long = "stun", value_name = "HOST:PORT")]
        stun: Vec<String>,
        /// A STUN server list file (format of data/stun_servers.txt).
        #[arg(long = "stun-list", value_name = "FILE")]
        stun_list: Option<PathBuf>,
        /// Interface to check instead of the default one.
        #[arg(long, value_name = "NAME")]
        interface: Option<String>,
    },
}

/// `--tcp-timeout`: a positive number of seconds, at most a day.
fn tcp_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(s),
        _ => Err(format!(
            "expected seconds in (0, 86400], e.g. 3 or 0.5, got {}",
            p2pd::text::quoted(text)
        )),
    }
}

/// Stack of the thread that runs scripts. Rhai recurses on the native stack (a call
/// level takes about 32 KiB in a debug build), and so do clones and drops of nested values:
/// 8x the main thread's usual 8 MiB lets deep scripts end in an error instead of an
/// overflow. Only the pages used are ever backed by memory.
const SCRIPT_STACK: usize = 64 << 20;

fn main() {
    let code = std::thread::Builder::new()
        .name("p2pd-script".into())
        .stack_size(SCRIPT_STACK)
        .spawn(run)
        .map(|t| t.join().unwrap_or(exit::SCRIPT_ERROR));
    std::process::exit(code.unwrap_or_else(|_| run()));
}

fn run() -> i32 {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("p2pd-runtime")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("p2pd-repl: cannot start the async runtime: {e}");
            return exit::SCRIPT_ERROR;
        }
    };
    match &args.command {
        Some(Command::StunServer {
            primary,
            alternate,
            tcp_timeout,
            max_connections,
        }) => {
            let mut config = ServerConfig::new(*primary, *alternate);
            config.tcp_timeout = std::time::Duration::from_secs_f64(*tcp_timeout);
            config.tcp_max_connections = *max_connections as usize;
            return runtime.block_on(stun_server(config));
        }
        Some(Command::Netcheck {
            json,
            stun,
            stun_list,
            interface,
        }) => {
            let config = match StunConfig::from_env(stun, stun_list.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("p2pd-repl: {e}");
                    return exit::USAGE;
                }
            };
            return runtime.block_on(netcheck(&config, *json, interface.as_deref()));
        }
        None => {}
    }
    let stun = match StunConfig::from_env(&args.stun, args.stun_list.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("p2pd-repl: {e}");
            return exit::USAGE;
        }
    };
    let mut limits = Limits::default();
    for flag in &args.limit {
        if let Err(e) = limits.set_flag(flag) {
            eprintln!("p2pd-repl: {e}");
            return exit::USAGE;
        }
    }
    let options = SessionOptions {
        args: args.args.clone(),
        stun,
        limits,
    };
    let cancel = Cancel::new();
    let interactive = args.eval.is_none() && args.file.is_none() && std::io::stdin().is_terminal();
    if args.tour && !interactive {
        eprintln!("p2pd-repl: --tour opens the REPL, which needs a terminal on stdin");
        return exit::USAGE;
    }
    listen_for_interrupts(&runtime, cancel.clone(), !interactive);

    let colour_ok = !args.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let handle = runtime.handle().clone();

    let code = if interactive {
        let opts = ReplOptions {
            colour: colour_ok && std::io::stdout().is_terminal(),
            history: repl::history::default_history_path(),
            offline: args.offline,
            tour: args.tour,
            // Plain output (NO_COLOR, --no-color, not a terminal) has no status line either.
            status: colour_ok && std::io::stdout().is_terminal(),
        };
        repl::run(opts, |sink| Session::new(handle, cancel, sink, options))
    } else {
        let (name, source) = match load_source(&args) {
            Ok(s) => s,
            Err(msg) => {
                eprintln!("p2pd-repl: {msg}");
                return exit::USAGE;
            }
        };
        let sink: Arc<dyn Sink> = Arc::new(StdSink);
        let mut session = Session::new(handle, cancel, sink.clone(), options);
        if args.offline {
            // The notice goes to stderr: a script's stdout stays its own.
            match session.engine().world.go_offline("--offline") {
                Ok(notice) => eprintln!("{notice}"),
                Err(e) => {
                    eprintln!("p2pd-repl: {e}");
                    return exit::SCRIPT_ERROR;
                }
            }
        }
        match session.eval(&source) {
            Ok(_) => exit::OK,
            Err(e) if e.interrupted => {
                eprintln!("KeyboardInterrupt");
                exit::INTERRUPTED
            }
            Err(e) => {
                let mut text = e.render(&name, &source);
                if let Some(hint) = e.line.and_then(|l| p2pd::script::python::hint(&source, l)) {
                    text.push('\n');
                    text.push_str(&hint);
                }
                let colour = colour_ok && std::io::stderr().is_terminal();
                eprintln!("{}", if colour { paint_red(&text) } else { text });
                exit::SCRIPT_ERROR
            }
        }
    };
    // Port mappings still open (or being deleted by a dropped handle) are deleted on the
    // gateway before the process ends: a mapping that outlives its program is a leak.
    runtime.block_on(p2pd::net::portmap::close_all(
        std::time::Duration::from_secs(2),
    ));
    // Pending timers and sockets are dropped with the runtime, as asyncio.run does.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    code
}

/// `p2pd-repl stun-server`: serve until Ctrl-C, then free every port.
async fn stun_server(config: ServerConfig) -> i32 {
    let primary = config.primary;
    // Port 0 in both picks two different free ports, so only a given port can clash.
    let same_port = |a: &SocketAddr| a.port() == primary.port() && a.port() != 0;
    if let Some(alt) = config
        .alternate
        .filter(|a| a.ip() == primary.ip() || same_port(a))
    {
        eprintln!(
            "p2pd-repl: the alternate address {alt} must differ from {primary} in both IP and port"
        );
        return exit::USAGE;
    }
    let mut server = match StunServer::start_config(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("p2pd-repl: cannot start the STUN server on {primary}: {e}");
            return exit::SCRIPT_ERROR;
        }
    };
    for addr in server.local_addrs() {
        println!("STUN server listening on {addr} (UDP and TCP)");
    }
    let _ = tokio::signal::ctrl_c().await;
    server.close().await;
    exit::OK
}

/// `p2pd-repl netcheck`: one report, as a table or JSON.
async fn netcheck(config: &StunConfig, json: bool, interface: Option<&str>) -> i32 {
    match p2pd::net::netcheck::netcheck(config, interface).await {
        Ok(report) if json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report.to_json()).unwrap_or_default()
            );
            exit::OK
        }
        Ok(report) => {
            println!("{report}");
            exit::OK
        }
        Err(e) => {
            eprintln!("p2pd-repl netcheck: {e}");
            exit::SCRIPT_ERROR
        }
    }
}

fn paint_red(text: &str) -> String {
    use owo_colors::OwoColorize;
    text.red().to_string()
}

/// The script's display name and text, from `-e`, a file or stdin.
fn load_source(args: &Args) -> Result<(String, String), String> {
    if let Some(code) = &args.eval {
        return Ok(("<eval>".into(), code.clone()));
    }
    if let Some(path) = &args.file {
        return std::fs::read_to_string(path)
            .map(|s| (path.display().to_string(), s))
            .map_err(|e| format!("cannot read {}: {e}", path.display()));
    }
    let mut src = String::new();
    std::io::stdin()
        .read_to_string(&mut src)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    Ok(("<stdin>".into(), src))
}

/// SIGINT trips the cancel flag; in script mode a second one exits at once.
fn listen_for_interrupts(runtime: &tokio::runtime::Runtime, cancel: Cancel, script_mode: bool) {
    // Registered before any user code runs, so an early Ctrl-C is never the default kill.
    let _enter = runtime.enter();
    let Ok(mut sigint) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
    else {
        return;
    };
    runtime.spawn(async move {
        while sigint.recv().await.is_some() {
            if cancel.trip() >= 2 && script_mode {
                eprintln!("KeyboardInterrupt");
                std::process::exit(exit::INTERRUPTED);
            }
        }
    });
}
