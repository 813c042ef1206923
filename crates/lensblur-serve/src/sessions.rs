//! In-memory cache of analysed photos for the page: least-recently-used eviction under a byte
//! bound, plus an idle timeout. Nothing is written to disk.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lensblur::io::Photo;
use lensblur::Analysis;

/// One uploaded photo and what the page renders from it.
#[derive(Debug)]
pub struct Session {
    /// Random identifier (32 hex digits).
    pub id: String,
    /// The full-resolution photo (for the download).
    pub photo: Photo,
    /// Its analysis at full resolution.
    pub analysis: Analysis,
    /// The photo shrunk to the preview size (≤ the configured preview pixels).
    pub preview_photo: Photo,
    /// The analysis at the preview size: each slider move renders from this.
    pub preview: Analysis,
    /// Bytes this session holds.
    pub bytes: usize,
}

impl Session {
    /// Bytes held by a photo's planes, an analysis's planes and their previews.
    pub fn estimate_bytes(
        photo: &Photo,
        analysis: &Analysis,
        preview_photo: &Photo,
        preview: &Analysis,
    ) -> usize {
        let photo_bytes = |p: &Photo| {
            (p.rgb.len() * 3 + p.alpha.as_ref().map_or(0, |a| a.data.len())) * 4
                + p.meta.exif.as_ref().map_or(0, Vec::len)
                + p.meta.icc.as_ref().map_or(0, Vec::len)
                + p.meta.xmp.as_ref().map_or(0, Vec::len)
        };
        photo_bytes(photo)
            + analysis.heap_bytes()
            + photo_bytes(preview_photo)
            + preview.heap_bytes()
    }
}

struct Entry {
    session: Arc<Session>,
    last_used: Instant,
}

/// Why a session could not be stored.
#[derive(Debug)]
pub struct TooBig {
    /// The session's size.
    pub bytes: usize,
    /// The cache's bound.
    pub max: usize,
}

/// The session cache.
pub struct Sessions {
    map: Mutex<HashMap<String, Entry>>,
    max_bytes: usize,
    idle: Duration,
    ids: RandomState,
    counter: AtomicU64,
    evicted: AtomicU64,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("max_bytes", &self.max_bytes)
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// A cache holding at most `max_bytes`, dropping sessions unused for `idle`.
    pub fn new(max_bytes: usize, idle: Duration) -> Self {
        Sessions {
            map: Mutex::new(HashMap::new()),
            max_bytes,
            idle,
            ids: RandomState::new(),
            counter: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave the map inconsistent (single inserts and
        // removes), so a poisoned lock is safe to keep using.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh unguessable id: 128 bits from the process's random hash keys and a counter.
    pub fn new_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let word = |salt: u64| {
            let mut h = self.ids.build_hasher();
            h.write_u64(salt);
            h.write_u64(n);
            h.write_u64(nanos);
            h.finish()
        };
        format!("{:016x}{:016x}", word(1), word(2))
    }

    /// Stores a session, evicting idle ones and then the least recently used until it fits.
    pub fn insert(&self, session: Session) -> Result<Arc<Session>, TooBig> {
        if session.bytes > self.max_bytes {
            return Err(TooBig {
                bytes: session.bytes,
                max: self.max_bytes,
            });
        }
        let session = Arc::new(session);
        let mut map = self.lock();
        self.expire_locked(&mut map, Instant::now());
        let mut total: usize = map.values().map(|e| e.session.bytes).sum();
        while total + session.bytes > self.max_bytes {
            let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = map.remove(&oldest) {
                total -= e.session.bytes;
                self.evicted.fetch_add(1, Ordering::Relaxed);
                tracing::info!("session {oldest} evicted (cache full)");
            }
        }
        map.insert(
            session.id.clone(),
            Entry {
                session: session.clone(),
                last_used: Instant::now(),
            },
        );
        Ok(session)
    }

    /// The session `id`, marking it used; `None` when unknown, evicted or expired.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        let now = Instant::now();
        let mut map = self.lock();
        self.expire_locked(&mut map, now);
        let e = map.get_mut(id)?;
        e.last_used = now;
        Some(e.session.clone())
    }

    /// Removes `id`; true when it existed.
    pub fn remove(&self, id: &str) -> bool {
        self.lock().remove(id).is_some()
    }

    /// Drops sessions idle for longer than the timeout.
    pub fn expire(&self) {
        let mut map = self.lock();
        self.expire_locked(&mut map, Instant::now());
    }

    fn expire_locked(&self, map: &mut HashMap<String, Entry>, now: Instant) {
        let before = map.len();
        map.retain(|_, e| now.duration_since(e.last_used) <= self.idle);
        let n = before - map.len();
        if n > 0 {
            self.evicted.fetch_add(n as u64, Ordering::Relaxed);
            tracing::info!("{n} idle session(s) expired");
        }
    }

    /// (sessions, bytes held, sessions evicted or expired so far).
    pub fn stats(&self) -> (usize, usize, u64) {
        let map = self.lock();
        (
            map.len(),
            map.values().map(|e| e.session.bytes).sum(),
            self.evicted.load(Ordering::Relaxed),
        )
    }

    /// The byte bound.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}
