//! One widget per file: the ladder, the details pane and its hex dump, the lease timeline, the
//! lab network's map.

pub mod details;
pub mod hexdump;
pub mod ladder;
pub mod map;
pub mod timeline;
