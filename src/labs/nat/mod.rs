//! NAT (RFC 3022) and port forwarding, the course's "포트 포워딩": r1 joins an inside LAN
//! (192.0.2.0/24: `web` at .10, `pc` at .20) to the outside (198.51.100.0/24: `remote` at
//! .7), and has one address out there, 198.51.100.1. First `remote` asks 198.51.100.1:8080 for
//! a page: r1's port forward sends it on to web 192.0.2.10:80, and web's answer leaves again
//! from 198.51.100.1:8080. Then `pc` asks remote for a page: r1's source NAT sends it out from
//! 198.51.100.1 and a port of its own, and brings the answer back. Each server says whom it saw
//! asking, so the rewrite shows in the answers too; each rewritten frame's details say what
//! changed, and the checksums recomputed.

use super::{Lab, LabFuture, LabInfo};
use crate::locale::en;
use crate::net::Wire;
use crate::net::sim::router::{Nat, TCP};
use crate::net::sim::{End, HostSpec, RouterSpec, SimListener, SimNet, Topology};
use color_eyre::eyre::{Result, WrapErr, bail};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static INFO: LabInfo = LabInfo {
    name: "nat",
    title: "NAT",
    port: PUBLIC_PORT,
    rfcs: "RFC 3022, RFC 1631",
    about: "port forwarding 198.51.100.1:8080 → web 192.0.2.10:80, and source NAT for the inside pc: addresses, ports and checksums before and after",
    wires: &[Wire::Sim],
    conn: None,
    network,
};

/// The hosts, by index: the outside one first (the ladder's left), then the inside ones.
const REMOTE: usize = 0;
const WEB: usize = 1;
const PC: usize = 2;
/// r1's outside address, and the port it forwards to web's port 80.
pub const PUBLIC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub const PUBLIC_PORT: u16 = 8080;
const WEB_ADDR: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 10), 80);
const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
/// The most of a request a server reads.
const MAX_REQUEST: usize = 4096;

fn network() -> Topology {
    let host = |name, ip: Ipv4Addr, gateway: Ipv4Addr| HostSpec {
        role: None,
        name,
        ip: Some(ip),
        prefix: 24,
        gateway: Some(gateway),
    };
    let inside = Ipv4Addr::new(192, 0, 2, 1);
    Topology {
        hosts: vec![
            host("remote", REMOTE_IP, PUBLIC),
            host("web", *WEB_ADDR.ip(), inside),
            host("pc", Ipv4Addr::new(192, 0, 2, 20), inside),
        ],
        routers: vec![RouterSpec {
            name: "r1",
            ports: vec![(inside, 24), (PUBLIC, 24)],
            routes: Vec::new(),
            silent: false,
            nat: Some(Nat { outside: 1, forwards: vec![(TCP, PUBLIC_PORT, WEB_ADDR)] }),
            filter: None,
        }],
        cables: vec![
            vec![End::Host(REMOTE), End::Router(0, 1)],
            vec![End::Router(0, 0), End::Host(WEB), End::Host(PC)],
        ],
    }
}

pub struct NatLab;

impl Lab for NatLab {
    fn info(&self) -> &'static LabInfo {
        &INFO
    }

    crate::labs::narration!("nat");

    fn packets(&self, net: &SimNet) -> Option<LabFuture> {
        Some(Box::pin(story(net.clone())))
    }
}

/// A page server: one request, answered with whom the server saw asking, then closed.
async fn serve_one(listener: SimListener, name: &'static str) -> Result<()> {
    let (mut stream, peer) = listener.accept().await?;
    let mut request = Vec::new();
    let mut buf = [0u8; 512];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < MAX_REQUEST {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let me = listener.local_addr();
    let body = format!("{name} {me}: you came from {peer}\n");
    let page = format!("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    stream.write_all(page.as_bytes()).await?;
    stream.shutdown().await?;
    // Until the client has closed too.
    let _ = crate::net::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
    Ok(())
}

/// `host` asks `to` for a page; returns what the server said it saw.
async fn fetch(net: &SimNet, host: usize, to: SocketAddrV4) -> Result<String> {
    let mut stream = net
        .connect_from(host, to.into())
        .await
        .wrap_err_with(|| en("cannot connect to {target}", &[("target", &to)]))?;
    stream.write_all(format!("GET / HTTP/1.0\r\nHost: {to}\r\n\r\n").as_bytes()).await?;
    let mut page = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 || page.len() > MAX_REQUEST {
            break;
        }
        page.extend_from_slice(&buf[..n]);
    }
    let page = String::from_utf8_lossy(&page).to_string();
    Ok(page.rsplit("\r\n\r\n").next().unwrap_or_default().trim().to_string())
}

/// The two stories: the port forward, then source NAT.
async fn story(net: SimNet) -> Result<()> {
    let mut servers = tokio::task::JoinSet::new();
    servers.spawn(serve_one(net.listen_on(WEB, WEB_ADDR.port())?, "web"));
    servers.spawn(serve_one(net.listen_on(REMOTE, 80)?, "remote"));
    let public = SocketAddrV4::new(PUBLIC, PUBLIC_PORT);
    net.set_state(REMOTE, en("asks {public} (r1's forwarded port)", &[("public", &public)]));
    let seen = fetch(&net, REMOTE, public).await?;
    if !seen.starts_with("web ") {
        bail!(en("the port forward did not reach web: {seen}", &[("seen", &seen)]));
    }
    net.set_state(PC, en("asks {remote} from the inside", &[("remote", &SocketAddrV4::new(REMOTE_IP, 80))]));
    let seen = fetch(&net, PC, SocketAddrV4::new(REMOTE_IP, 80)).await?;
    if !seen.contains(&format!("you came from {PUBLIC}:")) {
        bail!(en("remote saw the inside address, not r1's: {seen}", &[("seen", &seen)]));
    }
    while let Some(done) = servers.join_next().await {
        done??;
    }
    net.settle().await;
    Ok(())
}
