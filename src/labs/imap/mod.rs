//! The IMAP lab (RFC 9051): mail kept on the server, in folders, with flags, in sync between
//! clients. So far its wire format, sans-IO.
//!
//! - [`wire`]: where commands and responses end (lines and literals), their values, the commands.

pub mod wire;
