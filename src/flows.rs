//! Storage for the connection table: values in a slab, found by key through a hash map, and
//! threaded on intrusive lists in the order their connections last saw a packet.
//!
//! A packet moves its connection to the back of its list, so the front of each list is
//! always the connection idle the longest: eviction and shedding take from the front and
//! stop at the first one still in time, so their work is what they write out, never a walk
//! of the whole table. Nothing here allocates per packet.

use std::collections::HashMap;
use std::hash::Hash;

/// Which list an entry is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// Connections still open: evicted after the idle timeout.
    Open = 0,
    /// Connections seen to close, lingering for late packets.
    Closed = 1,
}

const NIL: u32 = u32::MAX;

struct Entry<K, V> {
    key: K,
    value: Option<V>,
    prev: u32,
    next: u32,
    list: List,
}

#[derive(Clone, Copy)]
struct Ends {
    head: u32,
    tail: u32,
}

const EMPTY: Ends = Ends {
    head: NIL,
    tail: NIL,
};

/// A hash map keyed by what came from the wire (addresses, ports): `ahash` with a random
/// seed per run is as hard to flood with collisions as the standard SipHash, at a fraction
/// of its cost per packet.
pub type WireMap<K, V> = HashMap<K, V, ahash::RandomState>;

/// A handle on an entry, valid until the entry is removed or the table compacted.
pub type Id = u32;

pub struct Flows<K, V> {
    index: WireMap<K, Id>,
    entries: Vec<Entry<K, V>>,
    free: Vec<Id>,
    lists: [Ends; 2],
}

impl<K: Hash + Eq + Copy, V> Default for Flows<K, V> {
    fn default() -> Self {
        Flows {
            index: WireMap::default(),
            entries: Vec::new(),
            free: Vec::new(),
            lists: [EMPTY; 2],
        }
    }
}

impl<K: Hash + Eq + Copy, V> Flows<K, V> {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn find(&self, key: &K) -> Option<Id> {
        self.index.get(key).copied()
    }

    pub fn get(&self, id: Id) -> &V {
        self.entries[id as usize]
            .value
            .as_ref()
            .expect("a live entry")
    }

    pub fn get_mut(&mut self, id: Id) -> &mut V {
        self.entries[id as usize]
            .value
            .as_mut()
            .expect("a live entry")
    }

    pub fn key(&self, id: Id) -> K {
        self.entries[id as usize].key
    }

    pub fn list_of(&self, id: Id) -> List {
        self.entries[id as usize].list
    }

    /// Adds `value` at the back of `list`; the key must not be present.
    pub fn insert(&mut self, key: K, value: V, list: List) -> Id {
        let entry = Entry {
            key,
            value: Some(value),
            prev: NIL,
            next: NIL,
            list,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.entries[id as usize] = entry;
                id
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as Id
            }
        };
        self.index.insert(key, id);
        self.link_back(id, list);
        id
    }

    /// Replaces the value of a live entry, returning the old one.
    pub fn replace(&mut self, id: Id, value: V) -> V {
        self.entries[id as usize]
            .value
            .replace(value)
            .expect("a live entry")
    }

    pub fn remove(&mut self, id: Id) -> (K, V) {
        self.unlink(id);
        let entry = &mut self.entries[id as usize];
        let value = entry.value.take().expect("a live entry");
        let key = entry.key;
        self.index.remove(&key);
        self.free.push(id);
        (key, value)
    }

    /// Moves the entry to the back of `list` (it just saw a packet, or changed list).
    pub fn touch(&mut self, id: Id, list: List) {
        let entry = &self.entries[id as usize];
        if entry.list == list && entry.next == NIL {
            return;
        }
        self.unlink(id);
        self.link_back(id, list);
    }

    /// The entry at the front of `list`: the one that saw a packet the longest ago.
    pub fn front(&self, list: List) -> Option<Id> {
        let head = self.lists[list as usize].head;
        (head != NIL).then_some(head)
    }

    /// Ids of every live entry, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = Id> + '_ {
        self.index.values().copied()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.iter_mut().filter_map(|e| e.value.as_mut())
    }

    /// Bytes this storage holds itself, by capacity (values' own heap memory excluded).
    pub fn footprint(&self) -> usize {
        // hashbrown: one control byte per bucket beside each (key, id) pair; buckets are the
        // capacity rounded up to a power of two at 7/8 load.
        let buckets = (self.index.capacity() * 8 / 7).next_power_of_two();
        buckets * (std::mem::size_of::<(K, Id)>() + 1)
            + self.entries.capacity() * std::mem::size_of::<Entry<K, V>>()
            + self.free.capacity() * std::mem::size_of::<Id>()
    }

    /// Gives memory back after a storm: when most of the slab is free, live entries are
    /// moved to the front (ids change) and the spare capacity released.
    pub fn compact(&mut self) {
        let live = self.index.len();
        if self.entries.len() < 1024 || live * 4 > self.entries.len() {
            return;
        }
        let mut entries = Vec::with_capacity(live);
        let mut lists = [EMPTY; 2];
        for list in [List::Open, List::Closed] {
            let mut at = self.lists[list as usize].head;
            while at != NIL {
                let old = &mut self.entries[at as usize];
                at = old.next;
                let id = entries.len() as Id;
                let ends = &mut lists[list as usize];
                entries.push(Entry {
                    key: old.key,
                    value: old.value.take(),
                    prev: ends.tail,
                    next: NIL,
                    list,
                });
                if ends.tail != NIL {
                    entries[ends.tail as usize].next = id;
                } else {
                    ends.head = id;
                }
                ends.tail = id;
            }
        }
        let mut index = WireMap::with_capacity_and_hasher(live, ahash::RandomState::new());
        for (id, entry) in entries.iter().enumerate() {
            index.insert(entry.key, id as Id);
        }
        self.entries = entries;
        self.index = index;
        self.free = Vec::new();
        self.lists = lists;
    }

    fn unlink(&mut self, id: Id) {
        let (prev, next, list) = {
            let e = &self.entries[id as usize];
            (e.prev, e.next, e.list)
        };
        let ends = &mut self.lists[list as usize];
        if prev == NIL {
            ends.head = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next == NIL {
            ends.tail = prev;
        } else {
            self.entries[next as usize].prev = prev;
        }
    }

    fn link_back(&mut self, id: Id, list: List) {
        let ends = &mut self.lists[list as usize];
        let tail = ends.tail;
        if tail == NIL {
            ends.head = id;
        } else {
            self.entries[tail as usize].next = id;
        }
        ends.tail = id;
        let entry = &mut self.entries[id as usize];
        entry.prev = tail;
        entry.next = NIL;
        entry.list = list;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(flows: &Flows<u32, &str>, list: List) -> Vec<u32> {
        let mut keys = Vec::new();
        let mut at = flows.front(list);
        while let Some(id) = at {
            keys.push(flows.key(id));
            let next = flows.entries[id as usize].next;
            at = (next != NIL).then_some(next);
        }
        keys
    }

    #[test]
    fn lists_keep_the_order_of_last_use_and_survive_compaction() {
        let mut flows = Flows::default();
        let ids: Vec<Id> = (0..2000)
            .map(|k| flows.insert(k, "v", List::Open))
            .collect();
        flows.touch(ids[0], List::Open);
        flows.touch(ids[5], List::Closed);
        assert_eq!(order(&flows, List::Open)[..3], [1, 2, 3]);
        assert_eq!(*order(&flows, List::Open).last().unwrap(), 0);
        assert_eq!(order(&flows, List::Closed), [5]);
        for &id in &ids[1..1900] {
            if id != ids[5] {
                flows.remove(id);
            }
        }
        assert_eq!(flows.len(), 102);
        flows.compact();
        assert_eq!(flows.len(), 102);
        assert_eq!(order(&flows, List::Closed), [5]);
        let open = order(&flows, List::Open);
        assert_eq!(open.len(), 101);
        assert_eq!((open[0], *open.last().unwrap()), (1900, 0));
        let id = flows.find(&1950).unwrap();
        assert_eq!((flows.key(id), *flows.get(id)), (1950, "v"));
        let (key, _) = flows.remove(flows.front(List::Open).unwrap());
        assert_eq!(key, 1900);
    }
}
