//! One widget per file: the ladder, the details pane and its hex dump.

pub mod details;
pub mod hexdump;
pub mod ladder;
pub mod timeline;
