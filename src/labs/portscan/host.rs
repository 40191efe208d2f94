//! The port scan on the host wire: a connect scan of a loopback address with the kernel's own
//! sockets (a SYN scan writes its SYNs on a raw socket of its own: the lab network shows one).
//! Besides the lab's six ports it probes a port the lab listens on itself (one of the kernel's
//! temporary ports), so one port surely answers open. Where the process may capture
//! (CAP_NET_RAW) the kernel's segments are the steps; else what connect() says of each port.
//! Only loopback: a scan of anyone else's host is refused.

use super::PORTS;
use crate::locale::en;
use crate::net::Gate;
use crate::net::capture::Capture;
use crate::net::host::HostNet;
use crate::session::StepSink;
use color_eyre::eyre::{Result, bail};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// The host and the extra port of `--connect HOST[:PORT]` (127.0.0.1 if none), if the host is
/// a loopback address; `Err` says why not.
pub fn target(connect: Option<&str>) -> Result<(IpAddr, Option<u16>), String> {
    let Some(connect) = connect else { return Ok((IpAddr::V4(Ipv4Addr::LOCALHOST), None)) };
    let (host, port) = match connect.parse::<SocketAddr>() {
        Ok(addr) => (addr.ip().to_string(), Some(addr.port())),
        Err(_) => match connect.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host.to_string(), port.parse().ok()),
            _ => (connect.trim_matches(['[', ']']).to_string(), None),
        },
    };
    let ip = match host.as_str() {
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        other => other.parse::<IpAddr>().map_err(|_| refusal(other))?,
    };
    if !ip.is_loopback() {
        return Err(refusal(&host));
    }
    Ok((ip, port))
}

/// Why a target is refused.
fn refusal(host: &str) -> String {
    en(
        "portscan scans only the lab network and loopback (127.0.0.0/8, ::1): {host} is neither, and scanning a host needs its owner's permission",
        &[("host", &host)],
    )
}

/// The connect scan of `connect` (loopback only), each connect held at `gate`.
pub async fn run(connect: Option<String>, sink: StepSink, gate: Arc<Gate>) -> Result<()> {
    let (ip, extra) = match target(connect.as_deref()) {
        Ok(t) => t,
        Err(why) => bail!(why),
    };
    // The lab's own listener: a port the kernel picks, which the scan finds open.
    let listener = tokio::net::TcpListener::bind((ip, 0)).await?;
    let own = listener.local_addr()?.port();
    let server = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                let _ = crate::net::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
            });
        }
    });
    let net = HostNet::for_run(sink.clone(), gate);
    let capture = Capture::open(sink, own).ok().map(Arc::new);
    if let Some(capture) = &capture {
        net.set_capture(capture.clone());
    }
    let mut ports: Vec<u16> = PORTS.to_vec();
    ports.extend(extra.into_iter().chain([own]).filter(|p| !PORTS.contains(p)));
    for port in ports {
        // Open, refused (closed), or no answer (filtered): the socket API's step, or the
        // captured segments, say which.
        if let Ok(conn) = net.connect(&SocketAddr::new(ip, port).to_string()).await {
            drop(conn);
        }
    }
    if let Some(capture) = &capture {
        // The capture runs a little behind: the last FIN and ACK come after the last connect.
        capture.settle(Duration::from_millis(20), Duration::from_millis(500)).await;
    }
    server.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_scanned() {
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(target(None), Ok((local, None)));
        assert_eq!(target(Some("127.0.0.1")), Ok((local, None)));
        assert_eq!(target(Some("localhost:8080")), Ok((local, Some(8080))));
        assert_eq!(target(Some("127.1.2.3:22")), Ok(("127.1.2.3".parse().unwrap(), Some(22))));
        assert_eq!(target(Some("[::1]:22")), Ok(("::1".parse().unwrap(), Some(22))));
        assert_eq!(target(Some("::1")), Ok(("::1".parse().unwrap(), None)));
        for outside in ["8.8.8.8", "192.0.2.2:80", "example.com", "[2001:db8::1]:22"] {
            let why = target(Some(outside)).unwrap_err();
            assert!(why.starts_with("portscan scans only the lab network and loopback"), "{why}");
        }
    }
}
