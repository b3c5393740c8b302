//! Readers the scanner is built on: a buffered reader that skips payload by seeking, windows onto an
//! archive's member, forward-only streams (decompressors) and decompression limits.

use std::cell::Cell;
use std::io::{self, Read, Seek, SeekFrom};
use std::rc::Rc;

/// A reader that can also seek; used as a trait object so that nested archives do not nest types.
pub(crate) trait ReadSeek: Read + Seek {}
impl<T: Read + Seek + ?Sized> ReadSeek for T {}

const BUFFER: usize = 64 * 1024;

/// A buffered reader over a seekable source, with the logical position and (when known) the length of
/// the stream, so that a skip past the end is seen as truncation rather than silently allowed.
pub(crate) struct Input<'a> {
    inner: &'a mut dyn ReadSeek,
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
    /// Position of `buffer[start]` in the stream.
    position: u64,
    length: Option<u64>,
}

impl<'a> Input<'a> {
    /// `inner` must be at the stream's start; `length` is `None` for forward-only streams.
    pub(crate) fn new(inner: &'a mut dyn ReadSeek, length: Option<u64>) -> Self {
        Input {
            inner,
            buffer: vec![0; BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            position: 0,
            length,
        }
    }

    pub(crate) fn position(&self) -> u64 {
        self.position
    }

    pub(crate) fn length(&self) -> Option<u64> {
        self.length
    }

    /// At least `wanted` buffered bytes (fewer at the end of the stream), without consuming them.
    pub(crate) fn peek(&mut self, wanted: usize) -> io::Result<&[u8]> {
        let wanted = wanted.min(BUFFER);
        if self.end - self.start < wanted {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            while self.end < wanted {
                let read = self.inner.read(&mut self.buffer[self.end..])?;
                if read == 0 {
                    break;
                }
                self.end += read;
            }
        }
        Ok(&self.buffer[self.start..self.end])
    }

    fn consume(&mut self, count: usize) {
        self.start += count;
        self.position += count as u64;
    }

    /// The next byte, `None` at the end.
    pub(crate) fn byte(&mut self) -> io::Result<Option<u8>> {
        if self.start == self.end {
            self.peek(1)?;
        }
        if self.start == self.end {
            return Ok(None);
        }
        let byte = self.buffer[self.start];
        self.consume(1);
        Ok(Some(byte))
    }

    /// Fills `out` entirely, or returns `false` at a premature end.
    pub(crate) fn read_exact(&mut self, out: &mut [u8]) -> io::Result<bool> {
        let mut filled = 0;
        while filled < out.len() {
            let available = self.peek(out.len() - filled)?;
            if available.is_empty() {
                return Ok(false);
            }
            let count = available.len().min(out.len() - filled);
            out[filled..filled + count].copy_from_slice(&available[..count]);
            self.consume(count);
            filled += count;
        }
        Ok(true)
    }

    /// `count` bytes, read into memory when at most `keep` long, else skipped (`Ok(Some(None))`);
    /// `Ok(None)` at a premature end.
    pub(crate) fn bytes(&mut self, count: u64, keep: usize) -> io::Result<Option<Option<Vec<u8>>>> {
        if count <= keep as u64 {
            // Read as the bytes arrive rather than allocating what a header claims up front.
            let mut out = Vec::new();
            Read::take(&mut *self, count).read_to_end(&mut out)?;
            return Ok((out.len() as u64 == count).then_some(Some(out)));
        }
        Ok(self.skip(count)?.then_some(None))
    }

    /// Skips `count` bytes, seeking past whatever is not buffered; `false` when the stream ends first.
    pub(crate) fn skip(&mut self, count: u64) -> io::Result<bool> {
        let buffered = (self.end - self.start) as u64;
        if count <= buffered {
            self.consume(count as usize);
            return Ok(true);
        }
        let target = self.position.saturating_add(count);
        let beyond = count - buffered;
        let after_buffer = self.position + buffered;
        self.start = 0;
        self.end = 0;
        if let Some(length) = self.length
            && target > length
        {
            self.inner.seek(SeekFrom::Start(length))?;
            self.position = length;
            return Ok(false);
        }
        let Ok(delta) = i64::try_from(beyond) else {
            self.position = after_buffer;
            return Ok(false);
        };
        // Inputs start at their inner reader's position 0, so the inner reader is at `after_buffer`;
        // a forward-only stream answers how far it got, short of the target at its end.
        let reached = self.inner.seek(SeekFrom::Current(delta))?;
        self.position = reached.min(target);
        Ok(self.position == target)
    }

    /// Reads a line (up to `\n`, excluded); keeps its first `keep` bytes and skips the rest. `None` when
    /// the stream ends before the newline.
    pub(crate) fn line(&mut self, keep: usize) -> io::Result<Option<(Vec<u8>, bool)>> {
        let mut kept = Vec::new();
        let mut whole = true;
        loop {
            let available = self.peek(1)?;
            if available.is_empty() {
                return Ok(None);
            }
            let (chunk, found) = match available.iter().position(|&byte| byte == b'\n') {
                Some(at) => (at, true),
                None => (available.len(), false),
            };
            let room = keep.saturating_sub(kept.len()).min(chunk);
            if room < chunk {
                whole = false;
            }
            kept.extend_from_slice(&available[..room]);
            self.consume(chunk + usize::from(found));
            if found {
                return Ok(Some((kept, whole)));
            }
        }
    }

    /// Skips to the end of the stream and returns how many bytes were left.
    pub(crate) fn skip_to_end(&mut self) -> io::Result<u64> {
        let start = self.position;
        if let Some(length) = self.length {
            self.skip(length.saturating_sub(start))?;
            return Ok(self.position - start);
        }
        loop {
            let available = self.peek(BUFFER)?.len();
            if available == 0 {
                return Ok(self.position - start);
            }
            self.consume(available);
        }
    }
}

impl Read for Input<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.peek(1)?;
        let count = available.len().min(out.len());
        out[..count].copy_from_slice(&available[..count]);
        self.consume(count);
        Ok(count)
    }
}

/// A forward-only stream as a `Seek`: only `SeekFrom::Current(n ≥ 0)` works, by reading and discarding.
/// `seek` returns the position reached, which is short of the target at the end of the stream.
pub(crate) struct ForwardOnly<R> {
    inner: R,
    position: u64,
}

impl<R: Read> ForwardOnly<R> {
    pub(crate) fn new(inner: R) -> Self {
        ForwardOnly { inner, position: 0 }
    }
}

impl<R: Read> Read for ForwardOnly<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(out)?;
        self.position += read as u64;
        Ok(read)
    }
}

impl<R: Read> Seek for ForwardOnly<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let count = match to {
            SeekFrom::Current(count) if count >= 0 => count as u64,
            SeekFrom::Start(target) if target >= self.position => target - self.position,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a forward-only stream cannot seek backwards",
                ));
            }
        };
        // Read and discard in large blocks: a decompressor under us works best on big reads.
        let mut scratch = vec![0u8; BUFFER];
        let mut left = count;
        while left > 0 {
            let wanted = usize::try_from(left).unwrap_or(BUFFER).min(BUFFER);
            let read = self.inner.read(&mut scratch[..wanted])?;
            if read == 0 {
                break;
            }
            left -= read as u64;
            self.position += read as u64;
        }
        Ok(self.position)
    }
}

/// `length` bytes of `inner` from `start`, with positions relative to `start`.
pub(crate) struct Window<'a> {
    inner: &'a mut dyn ReadSeek,
    start: u64,
    length: u64,
    position: u64,
    placed: bool,
}

impl<'a> Window<'a> {
    pub(crate) fn new(inner: &'a mut dyn ReadSeek, start: u64, length: u64) -> Self {
        Window {
            inner,
            start,
            length,
            position: 0,
            placed: false,
        }
    }
}

impl Read for Window<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let left = self.length.saturating_sub(self.position);
        if left == 0 || out.is_empty() {
            return Ok(0);
        }
        if !self.placed {
            self.inner
                .seek(SeekFrom::Start(self.start + self.position))?;
            self.placed = true;
        }
        let wanted = out.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut out[..wanted])?;
        self.position += read as u64;
        Ok(read)
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(target) => Some(target),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
            SeekFrom::End(delta) => self.length.checked_add_signed(delta),
        };
        let Some(target) = target else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of an archive member",
            ));
        };
        self.position = target;
        self.placed = false;
        Ok(target)
    }
}

/// Counts the bytes read through it into a shared counter.
pub(crate) struct Counting<R> {
    pub(crate) inner: R,
    pub(crate) count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(out)?;
        self.count.set(self.count.get() + read as u64);
        Ok(read)
    }
}

impl<R: Seek> Seek for Counting<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.inner.seek(to)
    }
}

/// Why a decompression was stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tripped(pub(crate) String);

/// Guards a decompressor: stops with an error once the inflated bytes exceed the declared size, the
/// compression ratio (against the compressed bytes consumed so far) or the scan's inflation budget.
pub(crate) struct Inflate<R> {
    pub(crate) inner: R,
    pub(crate) produced: u64,
    pub(crate) consumed: Rc<Cell<u64>>,
    pub(crate) declared: Option<u64>,
    pub(crate) max_ratio: u64,
    pub(crate) ratio_floor: u64,
    pub(crate) budget: Rc<Cell<u64>>,
    pub(crate) tripped: Rc<Cell<Option<Tripped>>>,
}

impl<R: Read> Read for Inflate<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(out)?;
        self.produced += read as u64;
        let consumed = self.consumed.get().max(1);
        let reason = if self
            .declared
            .is_some_and(|declared| self.produced > declared)
        {
            Some(format!(
                "inflates to more than the {} bytes its header declares",
                self.declared.unwrap_or_default()
            ))
        } else if self.produced > self.ratio_floor && self.produced / consumed > self.max_ratio {
            Some(format!(
                "inflated {} bytes from {consumed}: a ratio above the limit of {}",
                self.produced, self.max_ratio
            ))
        } else if read as u64 > self.budget.get() {
            Some("inflated more bytes than the scan's limit".to_owned())
        } else {
            None
        };
        if let Some(reason) = reason {
            self.tripped.set(Some(Tripped(reason.clone())));
            return Err(io::Error::other(reason));
        }
        self.budget.set(self.budget.get() - read as u64);
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn skip_past_the_end_of_a_seekable_input_is_truncation() -> io::Result<()> {
        let mut bytes = Cursor::new(vec![7u8; 100]);
        let mut input = Input::new(&mut bytes, Some(100));
        assert_eq!(input.byte()?, Some(7));
        assert!(input.skip(50)?);
        assert_eq!(input.position(), 51);
        assert!(!input.skip(50)?);
        assert_eq!(input.position(), 100);
        assert_eq!(input.byte()?, None);
        Ok(())
    }

    #[test]
    fn skip_past_the_end_of_a_stream_is_truncation() -> io::Result<()> {
        let mut stream = ForwardOnly::new(Cursor::new(vec![1u8; 200_000]));
        let mut input = Input::new(&mut stream, None);
        assert_eq!(input.byte()?, Some(1));
        assert!(input.skip(150_000)?);
        assert_eq!(input.position(), 150_001);
        assert!(!input.skip(60_000)?);
        assert_eq!(input.position(), 200_000);
        Ok(())
    }

    #[test]
    fn lines_keep_a_prefix_and_skip_the_rest() -> io::Result<()> {
        let mut bytes = Cursor::new(b"short\nlonger line\nno end".to_vec());
        let mut input = Input::new(&mut bytes, Some(24));
        assert_eq!(input.line(10)?, Some((b"short".to_vec(), true)));
        assert_eq!(input.line(3)?, Some((b"lon".to_vec(), false)));
        assert_eq!(input.line(10)?, None);
        Ok(())
    }

    #[test]
    fn a_window_reads_only_its_range() -> io::Result<()> {
        let mut bytes = Cursor::new((0u8..100).collect::<Vec<_>>());
        let mut window = Window::new(&mut bytes, 10, 5);
        let mut out = Vec::new();
        window.read_to_end(&mut out)?;
        assert_eq!(out, vec![10, 11, 12, 13, 14]);
        window.seek(SeekFrom::Start(3))?;
        out.clear();
        window.read_to_end(&mut out)?;
        assert_eq!(out, vec![13, 14]);
        Ok(())
    }
}
