//! TCP lab (RFC 9293): the three-way handshake with a random ISN, a short exchange of data and
//! its ACKs, the close (FIN and ACK each way, through TIME-WAIT), then a SYN to a closed port
//! that is answered by RST. On the lab network every segment is a step, with both hosts' TCP
//! states read from the real stack after it.

use super::{ClientCtx, Lab, LabFuture, LabInfo};
use crate::locale::{en, term};
use crate::net::{Stream, Wire};
use crate::session::Layer;
use crate::wire::{Decoded, Decoder, FramesOnly, Message, printable};
use color_eyre::eyre::{Result, WrapErr, bail};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static INFO: LabInfo = LabInfo {
    name: "tcp",
    title: "TCP",
    port: 7,
    rfcs: "RFC 9293",
    about: "the 3-way handshake, data and ACKs, FIN each way through TIME-WAIT, RST from a closed port",
    wires: &[Wire::Sim, Wire::Host],
    conn: Some("echo"),
    network: crate::net::sim::Topology::pair,
};

/// What the client sends; the server (an echo service, port 7) sends it back.
const DATA: &[u8] = b"hello, TCP";
/// How long either side waits for the other.
const PATIENCE: Duration = Duration::from_secs(30);

pub struct Tcp;

impl Lab for Tcp {
    fn info(&self) -> &'static LabInfo {
        &INFO
    }

    crate::labs::narration!("tcp");

    fn decoders(&self, segments: bool) -> (Box<dyn Decoder>, Box<dyn Decoder>) {
        if segments { (Box::new(FramesOnly), Box::new(FramesOnly)) } else { (Box::new(Writes), Box::new(Writes)) }
    }

    fn serve(&self, io: Stream, _peer: SocketAddr) -> LabFuture {
        Box::pin(echo(io))
    }

    fn client(&self, io: Stream, ctx: ClientCtx) -> LabFuture {
        Box::pin(client(io, ctx))
    }
}

/// Where the segments are not seen (the host wire without a capture): each write of the lab's
/// programs is one step, as the socket API shows it: the bytes, not the segments carrying them.
struct Writes;

impl Decoder for Writes {
    fn decode(&mut self, buf: &[u8], _keep: usize) -> Decoded {
        let text = printable(buf, 40);
        let msg =
            Message::new(Layer::Transport, "TCP", "socket.data", format!("write: {} bytes \"{text}\"", buf.len()))
                .field("TCP.payload_len", buf.len(), 0..buf.len())
                .field("TCP.payload", printable(buf, 256), 0..buf.len());
        Decoded::Message { msg, len: buf.len() }
    }
}

async fn read(io: &mut Stream, buf: &mut [u8], what: &str) -> Result<usize> {
    match crate::net::timeout(PATIENCE, io.read(buf)).await {
        Err(_) => bail!(en("no {what} within {s} s", &[("what", &what), ("s", &PATIENCE.as_secs())])),
        Ok(r) => r.wrap_err_with(|| en("waiting for {what}", &[("what", &what)])),
    }
}

/// The echo server: sends back what it gets until the client closes, then closes too.
async fn echo(mut io: Stream) -> Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        let n = read(&mut io, &mut buf, term("data or FIN from the client")).await?;
        if n == 0 {
            break;
        }
        io.write_all(&buf[..n]).await?;
    }
    io.shutdown().await?;
    Ok(())
}

/// Connect, send, read the echo, close; then try a port where nothing listens.
async fn client(mut io: Stream, ctx: ClientCtx) -> Result<()> {
    io.write_all(DATA).await?;
    let mut echoed = Vec::new();
    let mut buf = [0u8; 4096];
    while echoed.len() < DATA.len() {
        let n = read(&mut io, &mut buf, term("the echo")).await?;
        if n == 0 {
            bail!(term("the server closed before echoing"));
        }
        echoed.extend_from_slice(&buf[..n]);
    }
    if echoed != DATA {
        let (sent, got) =
            (format!("{:?}", String::from_utf8_lossy(DATA)), format!("{:?}", String::from_utf8_lossy(&echoed)));
        bail!(en("the echo differs: sent {sent}, got {got}", &[("sent", &sent), ("got", &got)]));
    }
    io.shutdown().await?;
    if read(&mut io, &mut buf, term("the server's FIN")).await? != 0 {
        bail!(term("data after the close"));
    }
    drop(io);

    // A port where nothing listens: the server host answers the SYN with RST.
    let server: SocketAddr = ctx.target.parse().wrap_err(term("the target is not an address"))?;
    let closed = ctx.net.closed_port(server).await;
    ctx.net.name_connection(closed.port(), "closed-port");
    match ctx.net.connect(&closed.to_string()).await {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(()),
        Err(e) => bail!(en("connecting to the closed port {port}: {error}", &[("port", &closed), ("error", &e)])),
        Ok(_) => bail!(en("port {port} was open; expected RST", &[("port", &closed)])),
    }
}
