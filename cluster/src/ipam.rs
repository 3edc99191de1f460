//! IP address management: addresses handed out from [`IpPool`]s, never twice.
//!
//! Every allocation is a key `/ipam/<pool>/<address>` whose value names the owner. A new
//! allocation is a transaction that creates that key only if it does not exist, so two
//! allocators racing for the same address cannot both win: the loser sees the failed compare,
//! reads the pool again and takes the next free address. The transaction can carry the
//! owner's own update (its status with the address), compared against the owner's revision, so
//! an address is never held by an object that does not know it. Release deletes the key, only
//! if the owner still holds it.

use std::net::Ipv4Addr;

use podvisor_store::Client;
use podvisor_store::api::{
    Compare, CompareOp, CompareTarget, DeleteRequest, KeyRange, PutRequest, RangeRequest, Txn,
    TxnOp,
};

use crate::objects::IpPool;

/// How often an allocation retries after losing a race before it gives up.
const MAX_ATTEMPTS: usize = 64;

/// What went wrong allocating or releasing an address.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// Every usable address of the pool is taken.
    #[error("IP pool {pool:?} is exhausted: all {usable} usable addresses are allocated")]
    Exhausted {
        /// The pool.
        pool: String,
        /// How many addresses it has.
        usable: usize,
    },
    /// The owner changed while the address was being allocated; nothing was allocated.
    #[error("{owner} changed during allocation from pool {pool:?}; nothing was allocated")]
    OwnerChanged {
        /// The pool.
        pool: String,
        /// Who asked.
        owner: String,
    },
    /// Too many allocators raced for the same addresses.
    #[error("gave up allocating from pool {pool:?} after {MAX_ATTEMPTS} lost races")]
    Contended {
        /// The pool.
        pool: String,
    },
    /// The store could not be reached or refused the request.
    #[error("IPAM store request failed")]
    Store(#[from] podvisor_store::StoreError),
}

/// The store key prefix of a pool's allocations.
pub fn pool_prefix(pool: &str) -> String {
    format!("/ipam/{pool}/")
}

fn address_key(pool: &str, addr: Ipv4Addr) -> String {
    format!("{}{addr}", pool_prefix(pool))
}

/// One allocated address and its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The address.
    pub address: Ipv4Addr,
    /// Who holds it (`Pod/default/web@<uid>`).
    pub owner: String,
    /// The store revision at which it was allocated.
    pub revision: u64,
}

/// Every allocation of `pool`, with the store revision of the read.
///
/// # Errors
/// Store failures.
pub fn allocations(client: &Client, pool: &str) -> Result<(Vec<Allocation>, u64), IpamError> {
    let resp = client.range(RangeRequest {
        range: KeyRange::prefix(pool_prefix(pool).into_bytes()),
        ..RangeRequest::default()
    })?;
    let prefix_len = pool_prefix(pool).len();
    let list = resp
        .kvs
        .iter()
        .filter_map(|kv| {
            let text = std::str::from_utf8(kv.key.get(prefix_len..)?).ok()?;
            Some(Allocation {
                address: text.parse().ok()?,
                owner: String::from_utf8_lossy(&kv.value).into_owned(),
                revision: kv.mod_revision,
            })
        })
        .collect();
    Ok((list, resp.revision))
}

/// Allocates the lowest free address of `pool` to `owner`.
///
/// `also_compare` and the operations `also_do` builds for the chosen address join the
/// allocating transaction: typically a compare of the owner's mod revision and the write of
/// its status with the address, so both happen or neither does. If the owner already holds an
/// address of the pool, that address is returned and nothing is written. The flag says whether
/// the address was newly allocated.
///
/// # Errors
/// [`IpamError::Exhausted`] when no address is free, [`IpamError::OwnerChanged`] when one of
/// `also_compare` failed, store failures.
pub fn allocate(
    client: &Client,
    pool: &IpPool,
    owner: &str,
    also_compare: Vec<Compare>,
    also_do: impl Fn(Ipv4Addr) -> Vec<TxnOp>,
) -> Result<(Ipv4Addr, bool), IpamError> {
    let name = pool.metadata.name.as_str();
    let usable = pool.usable_addresses();
    for _ in 0..MAX_ATTEMPTS {
        let (taken, _) = allocations(client, name)?;
        if let Some(mine) = taken.iter().find(|a| a.owner == owner) {
            return Ok((mine.address, false));
        }
        let taken: std::collections::BTreeSet<Ipv4Addr> = taken.iter().map(|a| a.address).collect();
        let Some(free) = usable.iter().copied().find(|a| !taken.contains(a)) else {
            return Err(IpamError::Exhausted {
                pool: name.to_string(),
                usable: usable.len(),
            });
        };
        let key = address_key(name, free);
        let mut compares = vec![Compare {
            key: key.clone().into_bytes(),
            op: CompareOp::Equal,
            target: CompareTarget::CreateRevision(0),
        }];
        let owner_compares = also_compare.len();
        compares.extend(also_compare.iter().cloned());
        let mut success = vec![TxnOp::Put(PutRequest {
            key: key.clone().into_bytes(),
            value: owner.as_bytes().to_vec(),
            ..PutRequest::default()
        })];
        success.extend(also_do(free));
        // On failure, read the address key back to learn whether we lost the address race
        // (retry) or the owner changed (give up).
        let failure = vec![TxnOp::Range(RangeRequest {
            range: KeyRange::key(key.into_bytes()),
            ..RangeRequest::default()
        })];
        let resp = client.txn(Txn {
            compares,
            success,
            failure,
        })?;
        if resp.succeeded {
            tracing::debug!(pool = name, address = %free, owner, "allocated address");
            return Ok((free, true));
        }
        let address_taken = resp.responses.iter().any(|r| match r {
            podvisor_store::api::TxnOpResponse::Range(range) => !range.kvs.is_empty(),
            _ => false,
        });
        if !address_taken && owner_compares > 0 {
            return Err(IpamError::OwnerChanged {
                pool: name.to_string(),
                owner: owner.to_string(),
            });
        }
    }
    Err(IpamError::Contended {
        pool: name.to_string(),
    })
}

/// Releases `address` of `pool` if `owner` holds it; returns whether it did.
///
/// # Errors
/// Store failures.
pub fn release(
    client: &Client,
    pool: &str,
    address: Ipv4Addr,
    owner: &str,
) -> Result<bool, IpamError> {
    let key = address_key(pool, address);
    let resp = client.txn(Txn {
        compares: vec![Compare::value_equals(
            key.clone().into_bytes(),
            owner.as_bytes().to_vec(),
        )],
        success: vec![TxnOp::Delete(DeleteRequest {
            range: KeyRange::key(key.into_bytes()),
            prev_kv: false,
        })],
        failure: Vec::new(),
    })?;
    if resp.succeeded {
        tracing::debug!(pool, %address, owner, "released address");
    }
    Ok(resp.succeeded)
}
