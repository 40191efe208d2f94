//! Where the lab server puts the mail it accepts: in memory, the last [`Mailbox::CAPACITY`]
//! messages. Nothing is relayed anywhere. The POP3 and IMAP labs read mail from here.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One accepted message, with its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The queue id the 250 reply named (`queued as 00000001`).
    pub id: String,
    /// The envelope sender from `MAIL FROM:<...>`; empty for the null path `<>`.
    pub reverse_path: String,
    /// The envelope recipients from each accepted `RCPT TO:<...>`.
    pub forward_paths: Vec<String>,
    /// The name the client gave in EHLO or HELO.
    pub client_domain: String,
    /// Where the client connected from.
    pub peer: SocketAddr,
    /// When the server accepted it.
    pub received: SystemTime,
    /// The message text after dot-stuffing was undone, with the server's `Received:` line on top.
    pub content: Vec<u8>,
}

impl Mail {
    /// The value of the first header field with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        super::message::header_fields(&self.content)
            .into_iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value)
    }
}

#[derive(Debug, Default)]
struct Store {
    /// Oldest first.
    mail: VecDeque<Mail>,
    /// Messages ever delivered: the next queue id.
    delivered: u64,
}

/// A bounded, shared, in-memory mailbox. Cheap to clone: clones share the same mail.
#[derive(Debug, Clone, Default)]
pub struct Mailbox {
    store: Arc<Mutex<Store>>,
}

impl Mailbox {
    /// Messages kept; the oldest go first.
    pub const CAPACITY: usize = 100;

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh queue id, unique within this mailbox.
    pub fn next_id(&self) -> String {
        let mut store = self.lock();
        store.delivered += 1;
        format!("{:08X}", store.delivered)
    }

    /// Keeps a message, dropping the oldest past [`Mailbox::CAPACITY`].
    pub fn deliver(&self, mail: Mail) {
        let mut store = self.lock();
        store.mail.push_back(mail);
        while store.mail.len() > Self::CAPACITY {
            store.mail.pop_front();
        }
    }

    /// Every kept message, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        self.lock().mail.iter().cloned().collect()
    }

    /// The messages for one recipient (case-insensitive), oldest first.
    pub fn for_recipient(&self, address: &str) -> Vec<Mail> {
        let store = self.lock();
        store.mail.iter().filter(|m| m.forward_paths.iter().any(|p| p.eq_ignore_ascii_case(address))).cloned().collect()
    }

    /// Removes the messages with these queue ids (POP3's UPDATE); returns how many went.
    pub fn remove(&self, ids: &[String]) -> usize {
        let mut store = self.lock();
        let before = store.mail.len();
        store.mail.retain(|m| !ids.contains(&m.id));
        before - store.mail.len()
    }

    /// The newest message.
    pub fn latest(&self) -> Option<Mail> {
        self.lock().mail.back().cloned()
    }

    pub fn len(&self) -> usize {
        self.lock().mail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().mail.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(id: String, to: &str) -> Mail {
        Mail {
            id,
            reverse_path: "a@b".into(),
            forward_paths: vec![to.into()],
            client_domain: "c".into(),
            peer: "127.0.0.1:1".parse().unwrap(),
            received: SystemTime::UNIX_EPOCH,
            content: b"Subject: Hi\r\n\r\nbody\r\n".to_vec(),
        }
    }

    #[test]
    fn keeps_the_last_hundred() {
        let mb = Mailbox::default();
        for i in 0..105 {
            mb.deliver(mail(mb.next_id(), if i % 2 == 0 { "bob@protolab.test" } else { "carol@protolab.test" }));
        }
        assert_eq!(mb.len(), Mailbox::CAPACITY);
        assert_eq!(mb.messages()[0].id, "00000006");
        assert_eq!(mb.latest().unwrap().id, "00000069");
        assert_eq!(mb.for_recipient("BOB@protolab.test").len(), 50);
        assert_eq!(mb.latest().unwrap().header("subject").as_deref(), Some("Hi"));
    }
}
