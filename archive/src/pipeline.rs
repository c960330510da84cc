//! Reading a layer on three threads: the stream is read and hashed on one, decompressed on a
//! second, and hashed again and unpacked by the caller — so inflating (the slowest step) runs
//! while the previous megabyte's files are written. Stages hand over 1 MiB chunks through small
//! bounded channels, and the read chunks back for reuse (no fresh zeroed megabyte per chunk);
//! an error in any stage ends the others.

use std::io::{self, BufReader, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crate::compression::decoder;

const CHUNK: usize = 1 << 20;
const DEPTH: usize = 4;

/// The receiving end of a stage, read as a stream.
pub(crate) struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
    /// Where read chunks go back to the stage that filled them.
    spare: SyncSender<Vec<u8>>,
}

impl ChannelReader {
    fn new(rx: Receiver<io::Result<Vec<u8>>>, spare: SyncSender<Vec<u8>>) -> Self {
        ChannelReader {
            rx,
            buf: Vec::new(),
            pos: 0,
            done: false,
            spare,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            let used = std::mem::take(&mut self.buf);
            self.pos = 0;
            if used.capacity() > 0 {
                // A full return channel (or a finished stage) drops it instead.
                let _ = self.spare.try_send(used);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The sender finished without error: end of stream.
                Err(_) => self.done = true,
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads `r` to its end in 1 MiB chunks into `tx`, reusing the chunks that come back on
/// `spare` (stops when the receiver is gone).
fn pump<R: Read>(mut r: R, tx: SyncSender<io::Result<Vec<u8>>>, spare: Receiver<Vec<u8>>) {
    loop {
        let mut chunk = match spare.try_recv() {
            Ok(mut c) => {
                c.resize(CHUNK, 0);
                c
            }
            Err(_) => vec![0u8; CHUNK],
        };
        let mut n = 0;
        while n < CHUNK {
            match r.read(&mut chunk[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        if n == 0 {
            return;
        }
        chunk.truncate(n);
        if tx.send(Ok(chunk)).is_err() {
            return;
        }
    }
}

/// Runs `f` with the decompressed form of `src`, read and decompressed on two threads of
/// `scope`; `src` is the caller's (hashing) reader.
pub(crate) fn decompressed<'scope, 'env, R>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    src: R,
) -> ChannelReader
where
    R: Read + Send + 'scope,
{
    let (ctx, crx) = sync_channel(DEPTH);
    let (cspare_tx, cspare_rx) = sync_channel(DEPTH + 2);
    scope.spawn(move || pump(src, ctx, cspare_rx));
    let (utx, urx) = sync_channel(DEPTH);
    let (uspare_tx, uspare_rx) = sync_channel(DEPTH + 2);
    scope.spawn(move || {
        let raw = ChannelReader::new(crx, cspare_tx);
        match decoder(BufReader::with_capacity(CHUNK, raw)) {
            Ok(d) => pump(d, utx, uspare_rx),
            Err(e) => {
                let _ = utx.send(Err(e));
            }
        }
    });
    ChannelReader::new(urx, uspare_tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_arrive_in_order_and_errors_pass_through() {
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 253) as u8).collect();
        let out = std::thread::scope(|s| {
            let mut r = decompressed(s, &data[..]);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            out
        });
        assert_eq!(out, data);
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let err = std::thread::scope(|s| {
            decompressed(s, Failing)
                .read_to_end(&mut Vec::new())
                .unwrap_err()
        });
        assert!(err.to_string().contains("disk on fire"));
    }
}
