//! WebSocket lab (RFC 6455): placeholder.
use super::{Lab, LabFuture, LabInfo};
use crate::net::Stream;
use crate::wire::{Decoded, Decoder};
use std::net::SocketAddr;
static INFO: LabInfo = LabInfo { name: "ws", title: "WebSocket", port: 80, rfcs: "RFC 6455", about: "x" };
pub struct WebSocket;
struct Nothing;
impl Decoder for Nothing {
    fn decode(&mut self, _buf: &[u8], _keep: usize) -> Decoded { Decoded::Incomplete }
}
impl Lab for WebSocket {
    fn info(&self) -> &'static LabInfo { &INFO }
    fn narration(&self) -> &'static str { "" }
    fn decoders(&self) -> (Box<dyn Decoder>, Box<dyn Decoder>) { (Box::new(Nothing), Box::new(Nothing)) }
    fn serve(&self, _io: Stream, _peer: SocketAddr) -> LabFuture { Box::pin(async { Ok(()) }) }
    fn client(&self, _io: Stream, _target: &str) -> LabFuture { Box::pin(async { Ok(()) }) }
}
