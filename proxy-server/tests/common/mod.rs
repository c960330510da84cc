//! Test support: a real strata-proxy process on a temp root, and clients on its socket.

#![allow(dead_code)]

pub mod layers;
pub mod rt;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use sha2::{Digest as _, Sha256};
use strata_proxy::api::content::content_client::ContentClient;
use strata_proxy::api::content::{WriteAction, WriteContentRequest, WriteContentResponse};
use strata_proxy::api::snapshots::snapshots_client::SnapshotsClient;
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// A strata-proxy process; killed on drop.
pub struct Proxy {
    pub root: PathBuf,
    pub socket: PathBuf,
    /// The runtime socket (containerd's own APIs).
    pub runtime_socket: PathBuf,
    pub child: Option<Child>,
    /// Flags added to every (re)start.
    pub extra_args: Vec<String>,
}

impl Proxy {
    /// Starts a server on `dir/root` with socket `dir/s.sock` and waits until it accepts.
    pub fn start(dir: &Path) -> Proxy {
        Proxy::start_with(dir, &[])
    }

    /// [`Proxy::start`] with extra command-line flags.
    pub fn start_with(dir: &Path, extra_args: &[&str]) -> Proxy {
        let mut p = Proxy {
            root: dir.join("root"),
            socket: dir.join("s.sock"),
            runtime_socket: dir.join("r.sock"),
            child: None,
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
        };
        p.restart();
        p
    }

    /// (Re)starts the process on the same root and socket.
    pub fn restart(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_strata-proxy"))
            .arg("--root")
            .arg(&self.root)
            .arg("--address")
            .arg(&self.socket)
            .arg("--runtime-address")
            .arg(&self.runtime_socket)
            // Tasks of this daemon only (never the host's /run/strata/state).
            .arg("--state")
            .arg(self.root.with_file_name("state"))
            // `STRATA_TEST_LOG=warn,strata_proxy::offload=debug` to follow a test by hand.
            .arg("--log-level")
            .arg(std::env::var("STRATA_TEST_LOG").unwrap_or("warn".into()))
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawning strata-proxy");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            assert!(Instant::now() < deadline, "strata-proxy did not start");
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("strata-proxy exited early: {st}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM and the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        c.wait().unwrap()
    }

    pub async fn channel(&self) -> Channel {
        connect(self.socket.clone()).await
    }

    /// A channel to the runtime socket (containerd's own APIs).
    pub async fn runtime_channel(&self) -> Channel {
        connect(self.runtime_socket.clone()).await
    }

    pub async fn content(&self) -> ContentClient<Channel> {
        ContentClient::new(self.channel().await).max_decoding_message_size(16 << 20)
    }

    pub async fn snapshots(&self) -> SnapshotsClient<Channel> {
        SnapshotsClient::new(self.channel().await)
    }
}

/// A gRPC channel over the unix socket `path`.
pub async fn connect(path: PathBuf) -> Channel {
    Endpoint::try_from("http://[::]:0")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .expect("connecting")
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A Write stream driven one message at a time.
pub struct WriteStream {
    tx: mpsc::Sender<WriteContentRequest>,
    rx: tonic::Streaming<WriteContentResponse>,
}

impl WriteStream {
    /// Opens the stream with `first` (the server needs it to lock the ref).
    pub async fn open(
        c: &mut ContentClient<Channel>,
        first: WriteContentRequest,
    ) -> Result<(WriteStream, WriteContentResponse), tonic::Status> {
        let (tx, rx) = mpsc::channel(4);
        tx.send(first).await.unwrap();
        let mut rx = c.write(ReceiverStream::new(rx)).await?.into_inner();
        let reply = rx.message().await?.expect("a reply");
        Ok((WriteStream { tx, rx }, reply))
    }

    pub async fn send(
        &mut self,
        req: WriteContentRequest,
    ) -> Result<WriteContentResponse, tonic::Status> {
        self.tx
            .send(req)
            .await
            .map_err(|_| tonic::Status::unknown("stream closed"))?;
        self.rx
            .message()
            .await?
            .ok_or_else(|| tonic::Status::unknown("no reply"))
    }
}

pub fn stat(reference: &str, total: i64, expected: &str) -> WriteContentRequest {
    WriteContentRequest {
        action: WriteAction::Stat as i32,
        r#ref: reference.into(),
        total,
        expected: expected.into(),
        ..Default::default()
    }
}

pub fn write(offset: i64, data: &[u8]) -> WriteContentRequest {
    WriteContentRequest {
        action: WriteAction::Write as i32,
        offset,
        data: data.to_vec().into(),
        ..Default::default()
    }
}

pub fn commit(offset: i64, total: i64, expected: &str) -> WriteContentRequest {
    WriteContentRequest {
        action: WriteAction::Commit as i32,
        offset,
        total,
        expected: expected.into(),
        ..Default::default()
    }
}

/// Writes and commits a blob in one stream.
pub async fn put(c: &mut ContentClient<Channel>, reference: &str, data: &[u8]) -> String {
    let d = digest_of(data);
    let (mut w, _) = WriteStream::open(c, stat(reference, data.len() as i64, ""))
        .await
        .unwrap();
    w.send(write(0, data)).await.unwrap();
    let r = w
        .send(commit(data.len() as i64, data.len() as i64, &d))
        .await
        .unwrap();
    assert_eq!(r.digest, d);
    d
}

pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut v = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// Polls `cond` for up to 10 s.
pub async fn wait_for(cond: impl Fn() -> bool, what: &str) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(
            std::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
