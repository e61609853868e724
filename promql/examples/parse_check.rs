//! Prints the parse result or error for each query given on stdin (one per line, `\n` escaped
//! as `\\n`); used to compare parse errors with Prometheus's.

use std::io::BufRead;

fn main() {
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let query = line.replace("\\n", "\n");
        match strata_promql::parser::parse(&query) {
            Ok(_) => println!("{line:?} OK"),
            Err(e) => println!("{line:?} => {e}"),
        }
    }
}
