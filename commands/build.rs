//! `sqlx::migrate!` embeds the migrations at compile time; a new file in
//! `migrations/` must rebuild this crate (sqlx's own advice).
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
