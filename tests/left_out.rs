//! Says which suites a plain `cargo test` leaves out. It runs no test: it
//! exists so that the omission is printed, not silent.

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    if !args.list && !cfg!(feature = "service-tests") {
        println!(
            "\nnote: the PostgreSQL suites (the store contract suite on Postgres, the \
             service on Postgres) were left out of this run.\n      They need a running \
             server and run with `cargo test --workspace --features service-tests`, as \
             .ci/run does.\n"
        );
    }
    libtest_mimic::run(&args, Vec::new()).exit();
}
