//! The IMAP lab's story: two clients of bob's mailbox in sync. bob's `phone` logs in, selects
//! INBOX and waits in IDLE; his `laptop` takes the tour of [`super::client`] (it reads the newest
//! message, which sets `\Seen`, and flags it), then sends a new message over SMTP to the same
//! `server`. The phone hears each change as it happens, `* n FETCH (FLAGS ...)` and
//! `* n EXISTS`, without asking: what POP3 cannot do. Every connection is tapped both ways, its
//! messages named by its end (`laptop`, `phone`) and its connection (`laptop`, `phone`, `smtp`).
//! On the lab network (laptop 192.0.2.1, server .2, phone .3) its frames are steps too; on
//! kernel sockets the three talk over loopback, each message waiting at the gate.

use super::client::Connection;
use crate::labs::smtp::Mailbox;
use crate::labs::smtp::mailbox::ACCOUNTS;
use crate::locale::en;
use crate::net::sim::{SimListener, SimNet, Topology};
use crate::net::{Dir, Gate, Recorder, Stream, TapStream};
use crate::session::StepSink;
use crate::wire::Decoder;
use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;

pub const LAPTOP: usize = 0;
pub const SERVER: usize = 1;
pub const PHONE: usize = 2;

/// How long the phone waits in IDLE for the news it expects.
const NEWS_TIMEOUT: Duration = Duration::from_secs(30);

/// The lab network: laptop, server and phone on one switched LAN.
pub fn network() -> Topology {
    Topology::lan(&[("laptop", 1), ("server", 2), ("phone", 3)])
}

/// Where the story's three parties talk: the lab network, or kernel sockets on loopback.
enum Place {
    Sim { net: SimNet, imap: SimListener, smtp: SimListener },
    Host { sink: StepSink, gate: Arc<Gate>, imap: TcpListener, smtp: TcpListener },
}

/// Which of the server's two services a connection is for.
#[derive(Clone, Copy)]
enum Service {
    Imap,
    Smtp,
}

impl Place {
    /// A connection from `host` (named `who`) to the server's `service`, tapped at both ends
    /// into one recorder whose steps carry `conn`.
    async fn open(
        &self,
        (host, who): (usize, &str),
        service: Service,
        conn: &str,
        decoders: (Box<dyn Decoder>, Box<dyn Decoder>),
    ) -> Result<(Stream, Stream, SocketAddr)> {
        match self {
            Place::Sim { net, imap, smtp } => {
                let listener = if matches!(service, Service::Imap) { imap } else { smtp };
                net.tapped(host, listener, conn, [who, "server"], decoders).await
            }
            Place::Host { sink, gate, imap, smtp } => {
                let listener = if matches!(service, Service::Imap) { imap } else { smtp };
                let to = listener.local_addr()?;
                let (client, server) = tokio::join!(tokio::net::TcpStream::connect(to), listener.accept());
                let client = client.wrap_err_with(|| en("cannot connect to {target}", &[("target", &to)]))?;
                let (server, peer) = server?;
                client.set_nodelay(true)?;
                server.set_nodelay(true)?;
                // Both ends are ours: each records what it writes, and waits at the gate.
                let rec = Recorder::new(sink.for_conn(conn), [who, "server"], decoders);
                let client: Stream =
                    Box::new(TapStream::new(client, rec.clone(), Dir::ClientToServer, false, gate.clone()));
                let server: Stream = Box::new(TapStream::new(server, rec, Dir::ServerToClient, false, gate.clone()));
                Ok((client, server, peer))
            }
        }
    }

    /// What `host` is doing now, shown under its lifeline on the lab network.
    fn set_state(&self, host: usize, label: String) {
        if let Place::Sim { net, .. } = self {
            net.set_state(host, label);
        }
    }
}

/// The story on the lab network; `Ok` once both clients logged out and every server is done.
pub async fn run(net: SimNet, mailbox: Mailbox, idle_timeout: Duration) -> Result<()> {
    let (imap, smtp) = (net.listen_on(SERVER, 143)?, net.listen_on(SERVER, 25)?);
    tell(Place::Sim { net: net.clone(), imap, smtp }, mailbox, idle_timeout).await?;
    net.settle().await;
    Ok(())
}

/// The story on kernel sockets, over loopback: the same three parties, each message waiting at
/// `gate`, the steps in `sink`.
pub async fn run_host(sink: StepSink, gate: Arc<Gate>, mailbox: Mailbox, idle_timeout: Duration) -> Result<()> {
    let imap = TcpListener::bind("127.0.0.1:0").await.wrap_err(crate::locale::term("cannot listen"))?;
    let smtp = TcpListener::bind("127.0.0.1:0").await.wrap_err(crate::locale::term("cannot listen"))?;
    tell(Place::Host { sink, gate, imap, smtp }, mailbox, idle_timeout).await
}

/// The story, wherever it is told; `Ok` once both clients logged out and every server is done.
async fn tell(place: Place, mailbox: Mailbox, idle_timeout: Duration) -> Result<()> {
    let account = ACCOUNTS[0];
    mailbox.welcome(account, SystemTime::now());
    let mut servers = tokio::task::JoinSet::new();

    // The phone: logged in, INBOX selected, waiting in IDLE.
    let (io, server_io, _) =
        place.open((PHONE, "phone"), Service::Imap, "phone", super::decoder::decoders(false)).await?;
    servers.spawn(super::server::serve(server_io, mailbox.clone(), idle_timeout, crate::tls::Mode::Plain));
    let mut phone = Connection::greeted(io).await?;
    phone.must(&format!("LOGIN {} {}", account.user, account.password)).await?;
    let selected = phone.must("SELECT INBOX").await?;
    let known = selected.number("EXISTS").unwrap_or(0);
    place.set_state(PHONE, en("waits in IDLE", &[]));
    let idle = phone.idle().await?;
    // It listens from now on: what it hears, it reports at the end.
    let listening = tokio::spawn(async move {
        let (mut seen, mut exists) = (false, false);
        let heard = async {
            while !(seen && exists) {
                let news = phone.news().await?;
                seen |= news.contains("FETCH") && news.contains("\\Seen");
                exists |= news.ends_with(&format!("{} EXISTS", known + 1));
            }
            Ok::<_, color_eyre::Report>(())
        };
        match crate::net::timeout(NEWS_TIMEOUT, heard).await {
            Ok(result) => result?,
            Err(_) => bail!(en("the phone heard no news in IDLE within {s} s", &[("s", &NEWS_TIMEOUT.as_secs())])),
        }
        phone.done(&idle).await?;
        phone.logout().await
    });

    // The laptop: the tour, which reads and flags the newest message.
    let (io, server_io, _) =
        place.open((LAPTOP, "laptop"), Service::Imap, "laptop", super::decoder::decoders(false)).await?;
    servers.spawn(super::server::serve(server_io, mailbox.clone(), idle_timeout, crate::tls::Mode::Plain));
    place.set_state(LAPTOP, en("reads INBOX", &[]));
    let mut laptop = Connection::greeted(io).await?;
    laptop.tour(account.user, account.password, true).await?;
    // Then it sends bob a new message, over SMTP to the same server.
    place.set_state(LAPTOP, en("sends a message over SMTP", &[]));
    let smtp_decoders = crate::labs::smtp::decoder::decoders(false);
    let (io, server_io, peer) = place.open((LAPTOP, "laptop"), Service::Smtp, "smtp", smtp_decoders).await?;
    let config = Arc::new(crate::labs::smtp::Config::default());
    servers.spawn(crate::labs::smtp::server::serve(server_io, peer, config, mailbox.clone()));
    crate::labs::smtp::client::run(io, Default::default()).await.wrap_err("SMTP")?;
    place.set_state(LAPTOP, en("logs out", &[]));
    laptop.logout().await?;

    listening.await.map_err(|e| eyre!(en("the phone's task failed: {error}", &[("error", &e)])))??;
    while let Some(done) = servers.join_next().await {
        done.map_err(|e| eyre!(en("server task failed: {error}", &[("error", &e)])))??;
    }
    Ok(())
}
