//! Layer compression: detected from the stream's first bytes (as containerd's
//! `DecompressStream` does, whatever the media type says), decoded with zlib-rs (gzip, several
//! members allowed) or libzstd (several frames allowed).

use std::io::{self, BufRead, Read, Write};

use crate::error::StreamFault;

/// How a layer stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

impl Compression {
    /// The compression named by an OCI or Docker layer media type (`None` for unknown types).
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        let mt = media_type;
        if mt.ends_with("+gzip") || mt.ends_with(".tar.gzip") || mt.ends_with("tar.gz") {
            Some(Compression::Gzip)
        } else if mt.ends_with("+zstd") || mt.ends_with(".tar.zstd") {
            Some(Compression::Zstd)
        } else if mt.ends_with(".tar") || mt.ends_with("layer.v1.tar") {
            Some(Compression::None)
        } else {
            None
        }
    }

    /// The compression whose magic number starts `head`.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The media type suffix of this compression for an OCI layer.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// Decodes `r` after looking at its first bytes.
pub fn decoder<'a, R: BufRead + 'a>(mut r: R) -> io::Result<Box<dyn Read + 'a>> {
    let c = Compression::detect(peek(&mut r, ZSTD_MAGIC.len())?.as_slice());
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(ZstdDecoder::new(r)?),
    })
}

/// Up to `n` first bytes without consuming them (a short read at the start is retried).
fn peek<R: BufRead>(r: &mut R, n: usize) -> io::Result<Vec<u8>> {
    let buf = r.fill_buf()?;
    Ok(buf[..buf.len().min(n)].to_vec())
}

/// A streaming zstd decoder over libzstd's `ZSTD_decompressStream`.
pub struct ZstdDecoder<R> {
    input: R,
    ctx: zstd_safe::DCtx<'static>,
    /// A frame has started and not yet ended.
    in_frame: bool,
}

impl<R: BufRead> ZstdDecoder<R> {
    pub fn new(input: R) -> io::Result<Self> {
        let ctx = zstd_safe::DCtx::try_create()
            .ok_or_else(|| io::Error::other("cannot allocate a zstd context"))?;
        Ok(ZstdDecoder {
            input,
            ctx,
            in_frame: false,
        })
    }
}

fn zstd_error(code: usize) -> io::Error {
    let msg = format!("zstd: {}", zstd_safe::get_error_name(code));
    io::Error::new(io::ErrorKind::InvalidData, StreamFault::Corrupt(msg))
}

impl<R: BufRead> Read for ZstdDecoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let input = self.input.fill_buf()?;
            if input.is_empty() {
                if self.in_frame {
                    let msg = "zstd: stream ends inside a frame".to_string();
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        StreamFault::Corrupt(msg),
                    ));
                }
                return Ok(0);
            }
            let mut inb = zstd_safe::InBuffer::around(input);
            let mut outb = zstd_safe::OutBuffer::around(&mut *buf);
            let hint = self
                .ctx
                .decompress_stream(&mut outb, &mut inb)
                .map_err(zstd_error)?;
            let (consumed, produced) = (inb.pos(), outb.pos());
            self.input.consume(consumed);
            self.in_frame = hint != 0;
            if produced > 0 {
                return Ok(produced);
            }
        }
    }
}

/// A compressing writer for a new layer; [`Encoder::finish`] ends the stream.
pub enum Encoder<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(ZstdEncoder<W>),
}

impl<W: Write> Encoder<W> {
    /// gzip at zlib's default level, zstd at level 3 (containerd's choices).
    pub fn new(c: Compression, w: W) -> io::Result<Self> {
        Ok(match c {
            Compression::None => Encoder::None(w),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::default(),
            )),
            Compression::Zstd => Encoder::Zstd(ZstdEncoder::new(w, 3)?),
        })
    }

    /// Ends the stream and returns the writer below.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Gzip(g) => g.finish(),
            Encoder::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Gzip(g) => g.write(buf),
            Encoder::Zstd(z) => z.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Gzip(g) => g.flush(),
            Encoder::Zstd(z) => z.flush(),
        }
    }
}

/// A streaming zstd encoder over libzstd's `ZSTD_compressStream2`.
pub struct ZstdEncoder<W> {
    out: W,
    ctx: zstd_safe::CCtx<'static>,
    buf: Vec<u8>,
}

impl<W: Write> ZstdEncoder<W> {
    pub fn new(out: W, level: i32) -> io::Result<Self> {
        let mut ctx = zstd_safe::CCtx::try_create()
            .ok_or_else(|| io::Error::other("cannot allocate a zstd context"))?;
        ctx.set_parameter(zstd_safe::CParameter::CompressionLevel(level))
            .map_err(zstd_error)?;
        Ok(ZstdEncoder {
            out,
            ctx,
            buf: vec![0u8; zstd_safe::CCtx::out_size()],
        })
    }

    /// Ends the frame and returns the writer below.
    pub fn finish(mut self) -> io::Result<W> {
        loop {
            let mut outb = zstd_safe::OutBuffer::around(&mut self.buf[..]);
            let left = self.ctx.end_stream(&mut outb).map_err(zstd_error)?;
            let n = outb.pos();
            self.out.write_all(&self.buf[..n])?;
            if left == 0 {
                return Ok(self.out);
            }
        }
    }
}

impl<W: Write> Write for ZstdEncoder<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut inb = zstd_safe::InBuffer::around(data);
        while inb.pos() < data.len() {
            let mut outb = zstd_safe::OutBuffer::around(&mut self.buf[..]);
            self.ctx
                .compress_stream2(
                    &mut outb,
                    &mut inb,
                    zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_continue,
                )
                .map_err(zstd_error)?;
            let n = outb.pos();
            self.out.write_all(&self.buf[..n])?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_and_magic() {
        use Compression::*;
        let types = [
            ("application/vnd.oci.image.layer.v1.tar", None),
            ("application/vnd.oci.image.layer.v1.tar+gzip", Gzip),
            ("application/vnd.oci.image.layer.v1.tar+zstd", Zstd),
            ("application/vnd.docker.image.rootfs.diff.tar.gzip", Gzip),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                Gzip,
            ),
        ];
        for (mt, want) in types {
            assert_eq!(Compression::from_media_type(mt), Some(want), "{mt}");
        }
        assert_eq!(Compression::from_media_type("text/plain"), Option::None);
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8]), Gzip);
        assert_eq!(Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]), Zstd);
        assert_eq!(Compression::detect(b"ustar"), None);
    }

    fn zstd_frame(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; zstd_safe::compress_bound(data.len())];
        let n = zstd_safe::compress(&mut out[..], data, 3).unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn encoders_round_trip() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut e = Encoder::new(c, Vec::new()).unwrap();
            e.write_all(&data).unwrap();
            let packed = e.finish().unwrap();
            assert_eq!(Compression::detect(&packed), c);
            let mut out = Vec::new();
            decoder(&packed[..]).unwrap().read_to_end(&mut out).unwrap();
            assert_eq!(out, data, "{c:?}");
        }
    }

    #[test]
    fn zstd_decodes_several_frames_and_rejects_a_cut_one() {
        let mut stream = zstd_frame(&[7u8; 100_000]);
        stream.extend(zstd_frame(b"tail"));
        let mut out = Vec::new();
        decoder(&stream[..]).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 100_004);
        assert!(out.ends_with(b"tail"));
        let cut = &stream[..stream.len() - 3];
        let err = decoder(cut)
            .unwrap()
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("zstd"), "{err}");
    }
}
