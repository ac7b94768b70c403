//! Ranges over the log's layers and sled, merged in key order (or reversed), a chunk of each
//! layer at a time so no lock is held between items.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;

use sled::IVec;

use super::{Layer, Shared};

/// Items a range reads from a layer per lock: a few first (many ranges are read for their
/// first item), then more.
const FIRST_CHUNK: usize = 8;
const CHUNK: usize = 256;

pub(super) fn owned<K: AsRef<[u8]>>(bound: Bound<&K>) -> Bound<IVec> {
    match bound {
        Bound::Included(k) => Bound::Included(IVec::from(k.as_ref())),
        Bound::Excluded(k) => Bound::Excluded(IVec::from(k.as_ref())),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// `[prefix, next prefix)`; unbounded above when the prefix is all `0xff`.
pub(super) fn prefix_bounds(prefix: &[u8]) -> (Bound<IVec>, Bound<IVec>) {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return (
                Bound::Included(IVec::from(prefix)),
                Bound::Excluded(IVec::from(end)),
            );
        }
    }
    (Bound::Included(IVec::from(prefix)), Bound::Unbounded)
}

/// Whether `(start, end)` holds no key (`BTreeMap::range` panics on such bounds).
fn is_empty(start: &Bound<IVec>, end: &Bound<IVec>) -> bool {
    match (start, end) {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s), Bound::Excluded(e))
        | (Bound::Excluded(s), Bound::Included(e))
        | (Bound::Excluded(s), Bound::Excluded(e)) => s >= e,
        _ => false,
    }
}

fn as_ref(bound: &Bound<IVec>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(k) => Bound::Included(k.as_ref()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// One layer's part of a range, read a chunk at a time.
struct LayerCursor {
    layer: Arc<Layer>,
    start: Bound<IVec>,
    end: Bound<IVec>,
    buffer: VecDeque<(IVec, Option<IVec>)>,
    done: bool,
    refills: u32,
}

impl LayerCursor {
    fn peek(&mut self, back: bool) -> Option<&(IVec, Option<IVec>)> {
        if self.buffer.is_empty() && !self.done {
            self.refill(back);
        }
        self.buffer.front()
    }

    fn refill(&mut self, back: bool) {
        if is_empty(&self.start, &self.end) {
            self.done = true;
            return;
        }
        let size = if self.refills == 0 {
            FIRST_CHUNK
        } else {
            CHUNK
        };
        self.refills += 1;
        let map = self.layer.read();
        let range = map.range::<[u8], _>((as_ref(&self.start), as_ref(&self.end)));
        let chunk: Vec<_> = if back {
            range
                .rev()
                .take(size)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        } else {
            range
                .take(size)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        drop(map);
        if chunk.len() < size {
            self.done = true;
        }
        if let Some((last, _)) = chunk.last() {
            if back {
                self.end = Bound::Excluded(last.clone());
            } else {
                self.start = Bound::Excluded(last.clone());
            }
        }
        self.buffer.extend(chunk);
    }
}

/// A range over the layers and sled, merged in key order (or reversed).
pub struct Merged {
    layers: Vec<LayerCursor>,
    sled: sled::Iter,
    sled_head: Option<(IVec, IVec)>,
    sled_done: bool,
    back: bool,
}

impl Merged {
    pub(super) fn new(shared: &Shared, start: Bound<IVec>, end: Bound<IVec>, back: bool) -> Merged {
        let layers = shared
            .layers()
            .into_iter()
            .map(|layer| LayerCursor {
                layer,
                start: start.clone(),
                end: end.clone(),
                buffer: VecDeque::new(),
                done: false,
                refills: 0,
            })
            .collect();
        let sled = if is_empty(&start, &end) {
            shared.tree.range::<&[u8], _>(&[][..]..&[][..])
        } else {
            shared.tree.range::<IVec, _>((start, end))
        };
        Merged {
            layers,
            sled,
            sled_head: None,
            sled_done: false,
            back,
        }
    }

    /// This range without sled's part (the filter knows sled holds nothing in it).
    pub(super) fn layers_only(mut self, yes: bool) -> Merged {
        if yes {
            self.sled_done = true;
        }
        self
    }

    /// Whether `a` comes before `b` in this range's direction.
    fn before(&self, a: &[u8], b: &[u8]) -> bool {
        if self.back {
            a > b
        } else {
            a < b
        }
    }
}

impl Iterator for Merged {
    type Item = Result<(IVec, IVec), sled::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.sled_head.is_none() && !self.sled_done {
                let item = if self.back {
                    self.sled.next_back()
                } else {
                    self.sled.next()
                };
                match item {
                    Some(Ok(kv)) => self.sled_head = Some(kv),
                    Some(Err(e)) => return Some(Err(e)),
                    None => self.sled_done = true,
                }
            }
            // The first key in this direction among the layers' heads and sled's.
            let back = self.back;
            let mut first: Option<IVec> = self.sled_head.as_ref().map(|(k, _)| k.clone());
            for i in 0..self.layers.len() {
                if let Some((k, _)) = self.layers[i].peek(back) {
                    let k = k.clone();
                    if first.as_ref().is_none_or(|f| self.before(&k, f)) {
                        first = Some(k);
                    }
                }
            }
            let key = first?;
            // The newest layer that has the key decides; the others and sled are passed.
            let mut value: Option<Option<IVec>> = None;
            for layer in &mut self.layers {
                if layer.peek(back).is_some_and(|(k, _)| *k == key) {
                    if let Some((_, v)) = layer.buffer.pop_front() {
                        value.get_or_insert(v);
                    }
                }
            }
            if self.sled_head.as_ref().is_some_and(|(k, _)| *k == key) {
                if let Some((_, v)) = self.sled_head.take() {
                    value.get_or_insert(Some(v));
                }
            }
            if let Some(Some(v)) = value {
                return Some(Ok((key, v)));
            }
        }
    }
}
