//! SMTP lab (RFC 5321): placeholder until the lab lands.

use super::{Lab, LabFuture, LabInfo};
use crate::net::Stream;
use crate::wire::{Decoded, Decoder};
use std::net::SocketAddr;

static INFO: LabInfo = LabInfo { name: "smtp", title: "SMTP", port: 25, rfcs: "RFC 5321, RFC 5322", about: "the SMTP dialogue: greeting, EHLO, MAIL, RCPT, DATA, QUIT" };

#[derive(Default)]
pub struct Smtp;

struct Nothing;
impl Decoder for Nothing {
    fn decode(&mut self, _buf: &[u8], _keep: usize) -> Decoded {
        Decoded::Incomplete
    }
}

impl Lab for Smtp {
    fn info(&self) -> &'static LabInfo {
        &INFO
    }
    fn narration(&self) -> &'static str {
        ""
    }
    fn decoders(&self) -> (Box<dyn Decoder>, Box<dyn Decoder>) {
        (Box::new(Nothing), Box::new(Nothing))
    }
    fn serve(&self, _io: Stream, _peer: SocketAddr) -> LabFuture {
        Box::pin(async { Err(color_eyre::eyre::eyre!("not yet")) })
    }
    fn client(&self, _io: Stream, _target: &str) -> LabFuture {
        Box::pin(async { Err(color_eyre::eyre::eyre!("not yet")) })
    }
}
