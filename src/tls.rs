//! TLS for the labs (rustls with the `ring` provider): the lab CA kept in the XDG data
//! directory, the servers' certificates it issues, the client and server settings, and the key
//! log that lets the decoders open the records our own endpoints sealed (and `--keylog` write
//! an NSS key log for Wireshark).

use crate::locale::en;
use crate::wire::Decoder;
use crate::wire::tls::{Secrets, Switch};
use color_eyre::eyre::{Result, WrapErr, eyre};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The names the lab servers' certificate holds: loopback, the lab domains, the lab network.
pub const SERVER_NAMES: &[&str] =
    &["localhost", "127.0.0.1", "protolab.test", "mail.protolab.test", "mail.a.lab", "mail.b.lab", "192.0.2.2"];
/// The name our clients ask for (SNI) when they talk to our own server.
pub const LAB_SERVER_NAME: &str = "protolab.test";
/// Handshakes whose secrets the key log keeps for the decoders; older ones are forgotten.
const MAX_HANDSHAKES: usize = 4096;
/// How a lab's connection uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// In the clear (the server may still offer STARTTLS).
    #[default]
    Plain,
    /// In the clear, then STARTTLS (SMTP submission on 587, POP3 STLS, IMAP STARTTLS).
    StartTls,
    /// TLS from the first byte (465, 995, 993).
    Implicit,
}

/// The TLS story this process's mail labs tell (`--starttls`, `--tls`) and the CAs their
/// clients trust (`--cafile`): set once from the command line, before the labs are made.
static STORY: OnceLock<(Mode, Option<PathBuf>)> = OnceLock::new();

/// Sets the TLS story of the mail labs [`crate::labs::registry`] makes; the first call wins.
pub fn set_story(mode: Mode, cafile: Option<PathBuf>) {
    let _ = STORY.set((mode, cafile));
}

/// The TLS story the command line chose (in the clear unless it chose one).
pub fn story() -> (Mode, Option<PathBuf>) {
    STORY.get().cloned().unwrap_or_default()
}

/// What a server's session knows of TLS on its connection (POP3's STLS, IMAP's STARTTLS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerTls {
    /// The connection is inside TLS (after the handshake, or on an implicit-TLS port).
    pub active: bool,
    /// No password before TLS (the STARTTLS story).
    pub required: bool,
    /// The session agreed to start TLS: the socket loop runs the handshake next.
    starting: bool,
}

impl ServerTls {
    /// A session on a connection that uses TLS as `mode` says.
    pub fn new(mode: Mode) -> Self {
        ServerTls { active: mode == Mode::Implicit, required: mode == Mode::StartTls, starting: false }
    }

    /// The session said yes to STLS / STARTTLS.
    pub fn agree(&mut self) {
        self.starting = true;
    }

    /// Whether the session just agreed (once): the socket loop starts the handshake.
    pub fn take_starting(&mut self) -> bool {
        std::mem::take(&mut self.starting)
    }

    /// The handshake finished.
    pub fn started(&mut self) {
        self.active = true;
    }

    /// A password would cross the wire readable, and the story forbids it.
    pub fn refuses_login(&self) -> bool {
        self.required && !self.active
    }
}

/// A client's TLS: how it uses it, whom it trusts, which name it asks for.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    pub mode: Mode,
    /// Trust the CA certificates in this file, not the lab CA (a real server).
    pub cafile: Option<PathBuf>,
    /// The server is our own (its name is the lab server's).
    pub ours: bool,
    /// `HOST:PORT` of the server: its name for SNI and the certificate check.
    pub target: String,
}

impl ClientTls {
    pub fn name(&self) -> Result<ServerName<'static>> {
        server_name(&self.target, self.ours)
    }
}

/// The CA certificate's common name, as `openssl x509 -subject` shows it.
const CA_NAME: &str = "protolab lab CA (for teaching only)";

/// The lab CA: made on first use, kept in `$XDG_DATA_HOME/protolab/ca` (else
/// `~/.local/share/protolab/ca`), so that clients told to trust it once keep trusting it.
pub struct LabCa {
    /// The certificate, PEM: what `protolab ca` prints.
    pub cert_pem: String,
    cert_der: CertificateDer<'static>,
    key: rcgen::KeyPair,
    pub dir: PathBuf,
}

fn ca_params() -> Result<rcgen::CertificateParams> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(rcgen::DnType::CommonName, CA_NAME);
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "protolab");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2045, 1, 1);
    Ok(params)
}

/// Keeps this process's lab CA in `dir` instead (tests, which leave the user's CA alone). Only
/// before the CA is first used; the first call wins.
pub fn set_ca_dir(dir: PathBuf) {
    let _ = CA_DIR.set(dir);
}

static CA_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Where the CA is kept.
pub fn ca_dir() -> Option<PathBuf> {
    if let Some(dir) = CA_DIR.get() {
        return Some(dir.clone());
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(base.join("protolab").join("ca"))
}

impl LabCa {
    /// The CA of this user: read, or made and written on first use.
    pub fn load_or_make() -> Result<LabCa> {
        let dir = ca_dir().ok_or_else(|| eyre!(en("no HOME or XDG_DATA_HOME to keep the lab CA in", &[])))?;
        let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
        if let (Ok(cert_pem), Ok(key_pem)) = (std::fs::read_to_string(&cert_path), std::fs::read_to_string(&key_path)) {
            let key = rcgen::KeyPair::from_pem(&key_pem).wrap_err_with(|| key_path.display().to_string())?;
            let cert_der = pem_certificate(&cert_pem)
                .ok_or_else(|| eyre!(en("{path} holds no certificate", &[("path", &cert_path.display())])))?;
            return Ok(LabCa { cert_pem, cert_der, key, dir });
        }
        let key = rcgen::KeyPair::generate()?;
        let cert = ca_params()?.self_signed(&key)?;
        std::fs::create_dir_all(&dir).wrap_err_with(|| dir.display().to_string())?;
        write_private(&key_path, key.serialize_pem().as_bytes())?;
        std::fs::write(&cert_path, cert.pem()).wrap_err_with(|| cert_path.display().to_string())?;
        Ok(LabCa { cert_pem: cert.pem(), cert_der: cert.der().clone(), key, dir })
    }

    /// A certificate for the lab servers' names, signed by this CA, and its key.
    pub fn issue(&self, names: &[&str]) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name.push(rcgen::DnType::CommonName, names.first().copied().unwrap_or("localhost"));
        params.use_authority_key_identifier_extension = true;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let issuer = rcgen::Issuer::new(ca_params()?, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((vec![cert.der().clone(), self.cert_der.clone()], key))
    }
}

impl LabCa {
    /// A certificate for `names` signed by this CA, in PEM (the chain, then the key): for a
    /// real server in the lab (the tests' Dovecot), so that clients trusting the lab CA trust it.
    pub fn issue_pem(&self, names: &[&str]) -> Result<(String, String)> {
        let (chain, key) = self.issue(names)?;
        let pem = |label: &str, der: &[u8]| {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            let lines: Vec<&str> =
                b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
            format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
        };
        let certs: String = chain.iter().map(|c| pem("CERTIFICATE", c)).collect();
        Ok((certs, pem("PRIVATE KEY", key.secret_der())))
    }
}

/// The key file is readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).wrap_err_with(|| path.display().to_string())?;
    file.write_all(bytes).wrap_err_with(|| path.display().to_string())
}

/// The first certificate of a PEM text.
fn pem_certificate(pem: &str) -> Option<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes()).next()?.ok()
}

/// The provider every TLS endpoint of the process uses: `ring` only (the project's choice: no
/// C library to build; rustls 0.23.48 deprecates it for lacking post-quantum key exchange).
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The process's lab CA, loaded once.
pub fn lab_ca() -> Result<&'static LabCa> {
    static CA: OnceLock<LabCa> = OnceLock::new();
    if let Some(ca) = CA.get() {
        return Ok(ca);
    }
    let ca = LabCa::load_or_make()?;
    Ok(CA.get_or_init(|| ca))
}

/// The settings of our TLS servers: TLS 1.3, the lab certificate, secrets to the key log.
pub fn server_config() -> Result<Arc<rustls::ServerConfig>> {
    static CONFIG: OnceLock<Arc<rustls::ServerConfig>> = OnceLock::new();
    if let Some(c) = CONFIG.get() {
        return Ok(c.clone());
    }
    let (chain, key) = lab_ca()?.issue(SERVER_NAMES)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.key_log = key_log();
    Ok(CONFIG.get_or_init(|| Arc::new(config)).clone())
}

/// The settings of our TLS clients: trust the lab CA, or the CA certificates in `cafile`. They
/// offer TLS 1.3 and 1.2, as real clients do, so a real server that speaks only 1.2 is reached
/// too (our servers speak 1.3 only, and the lab opens only 1.3's records).
pub fn client_config(cafile: Option<&Path>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    match cafile {
        Some(path) => {
            use rustls::pki_types::pem::PemObject;
            let mut n = 0;
            for cert in CertificateDer::pem_file_iter(path).wrap_err_with(|| path.display().to_string())? {
                roots.add(cert.wrap_err_with(|| path.display().to_string())?)?;
                n += 1;
            }
            if n == 0 {
                return Err(eyre!(en("{path} holds no certificate", &[("path", &path.display())])));
            }
        }
        None => roots.add(lab_ca()?.cert_der.clone())?,
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.key_log = key_log();
    Ok(Arc::new(config))
}

/// The name a client asks for: the host part of `target` (`mail.example.org:587`), or the lab
/// server's name for our own server.
pub fn server_name(target: &str, ours: bool) -> Result<ServerName<'static>> {
    let host = if ours { LAB_SERVER_NAME } else { target.rsplit_once(':').map(|(h, _)| h).unwrap_or(target) };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|_| eyre!(en("{host} is not a server name", &[("host", &host)])))
}

/// The secrets our endpoints logged, by ClientHello random, and where `--keylog` writes them.
#[derive(Default)]
pub struct KeyLog {
    state: Mutex<KeyState>,
}

#[derive(Default)]
struct KeyState {
    secrets: HashMap<[u8; 32], Vec<(String, Vec<u8>)>>,
    order: VecDeque<[u8; 32]>,
    file: Option<std::fs::File>,
}

impl std::fmt::Debug for KeyLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyLog")
    }
}

/// The process's key log.
pub fn keys() -> Arc<KeyLog> {
    static KEYS: OnceLock<Arc<KeyLog>> = OnceLock::new();
    KEYS.get_or_init(Arc::default).clone()
}

fn key_log() -> Arc<dyn rustls::KeyLog> {
    keys()
}

/// The key log as the decoders read it.
pub fn secrets() -> Arc<dyn Secrets> {
    keys()
}

impl KeyLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, KeyState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on every secret is also appended to `path` (NSS key log format, what
    /// Wireshark's "(Pre)-Master-Secret log filename" and SSLKEYLOGFILE read).
    pub fn write_to(&self, path: &Path) -> Result<()> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .wrap_err_with(|| path.display().to_string())?;
        self.lock().file = Some(file);
        Ok(())
    }
}

impl rustls::KeyLog for KeyLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let Ok(random) = <[u8; 32]>::try_from(client_random) else { return };
        let mut s = self.lock();
        if let Some(file) = &mut s.file {
            let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
            let _ = writeln!(file, "{label} {} {}", hex(client_random), hex(secret));
        }
        if !s.secrets.contains_key(&random) {
            if s.order.len() == MAX_HANDSHAKES
                && let Some(old) = s.order.pop_front()
            {
                s.secrets.remove(&old);
            }
            s.order.push_back(random);
        }
        let entry = s.secrets.entry(random).or_default();
        entry.retain(|(l, _)| l != label);
        entry.push((label.to_string(), secret.to_vec()));
    }

    fn will_log(&self, _label: &str) -> bool {
        true
    }
}

impl Secrets for KeyLog {
    fn secret(&self, client_random: &[u8; 32], label: &str) -> Option<Vec<u8>> {
        let s = self.lock();
        s.secrets.get(client_random)?.iter().find(|(l, _)| l == label).map(|(_, v)| v.clone())
    }
}

/// A real TLS 1.3 exchange in memory between a rustls client and server with these settings:
/// the handshake, then `client_says` and `server_says` as application data, then each side's
/// close_notify. Every write either side made, in order, as (0 client / 1 server, bytes): for
/// tests and the fuzzer's corpus, with the secrets in the key log like any of our endpoints'.
pub fn in_memory(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    client_says: &[&[u8]],
    server_says: &[&[u8]],
) -> Result<Vec<(u8, Vec<u8>)>> {
    let name = ServerName::try_from(LAB_SERVER_NAME)?;
    let mut c = rustls::Connection::Client(rustls::ClientConnection::new(client, name)?);
    let mut s = rustls::Connection::Server(rustls::ServerConnection::new(server)?);
    let mut wire = Vec::new();
    fn pump(
        from: &mut rustls::Connection,
        to: &mut rustls::Connection,
        dir: u8,
        wire: &mut Vec<(u8, Vec<u8>)>,
    ) -> Result<()> {
        while from.wants_write() {
            let mut out = Vec::new();
            from.write_tls(&mut out)?;
            to.read_tls(&mut out.as_slice())?;
            to.process_new_packets()?;
            wire.push((dir, out));
        }
        Ok(())
    }
    for _ in 0..4 {
        pump(&mut c, &mut s, 0, &mut wire)?;
        pump(&mut s, &mut c, 1, &mut wire)?;
    }
    for line in client_says {
        c.writer().write_all(line)?;
        pump(&mut c, &mut s, 0, &mut wire)?;
    }
    for line in server_says {
        s.writer().write_all(line)?;
        pump(&mut s, &mut c, 1, &mut wire)?;
    }
    s.send_close_notify();
    pump(&mut s, &mut c, 1, &mut wire)?;
    c.send_close_notify();
    pump(&mut c, &mut s, 0, &mut wire)?;
    Ok(wire)
}

/// Decoders for a connection of a mail protocol that may go into TLS: `inner` makes the
/// protocol's own (client→server, server→client) given the switch they turn on after STARTTLS;
/// `implicit`: TLS from the first byte. Records are opened with this process's key log.
pub fn decoders(
    implicit: bool,
    inner: impl FnOnce(Switch) -> (Box<dyn Decoder>, Box<dyn Decoder>),
) -> (Box<dyn Decoder>, Box<dyn Decoder>) {
    let switch = Switch::new(implicit);
    crate::wire::tls::decoders(inner(switch.clone()), switch, secrets())
}

/// A TLS server side on `io` (implicit TLS, or after STARTTLS).
pub async fn accept(io: crate::net::Stream) -> Result<crate::net::Stream> {
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config()?);
    let tls =
        acceptor.accept(io).await.map_err(|e| eyre!(en("TLS handshake with the client: {error}", &[("error", &e)])))?;
    Ok(Box::new(tls))
}

/// A TLS client side on `io`, asking for `name`, trusting the lab CA or `cafile`.
pub async fn connect(
    io: crate::net::Stream,
    name: ServerName<'static>,
    cafile: Option<&Path>,
) -> Result<crate::net::Stream> {
    let connector = tokio_rustls::TlsConnector::from(client_config(cafile)?);
    let tls = connector
        .connect(name, io)
        .await
        .map_err(|e| eyre!(en("TLS handshake with the server: {error}", &[("error", &e)])))?;
    Ok(Box::new(tls))
}

/// Server and client settings from a CA made in memory, for tests that leave the user's lab CA alone.
#[cfg(test)]
pub fn test_configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = ca_params().unwrap().self_signed(&key).unwrap();
    let ca = LabCa { cert_pem: cert.pem(), cert_der: cert.der().clone(), key, dir: PathBuf::new() };
    let (chain, key) = ca.issue(SERVER_NAMES).unwrap();
    let mut server = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    server.key_log = key_log();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert_der.clone()).unwrap();
    let mut client = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.key_log = key_log();
    (Arc::new(server), Arc::new(client))
}

#[cfg(test)]
mod tests {
    use super::*;

    use rustls::client::danger::ServerCertVerifier;

    #[test]
    fn the_ca_issues_a_certificate_a_client_trusting_it_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = ca_params().unwrap().self_signed(&key).unwrap();
        let ca = LabCa { cert_pem: cert.pem(), cert_der: cert.der().clone(), key, dir: dir.path().into() };
        let (chain, _) = ca.issue(SERVER_NAMES).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der.clone()).unwrap();
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider()).build().unwrap();
        let now = rustls::pki_types::UnixTime::now();
        for name in ["localhost", "127.0.0.1", "mail.b.lab"] {
            let name = ServerName::try_from(name).unwrap();
            verifier.verify_server_cert(&chain[0], &chain[1..], &name, &[], now).unwrap();
        }
        let other = ServerName::try_from("example.com").unwrap();
        assert!(verifier.verify_server_cert(&chain[0], &chain[1..], &other, &[], now).is_err());
    }
}
