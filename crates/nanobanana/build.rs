//! `sqlx::migrate!` embeds `migrations/` when the crate compiles; without this, adding or
//! editing a migration alone would not rebuild the crate, and an incremental build would ship
//! the old list.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
