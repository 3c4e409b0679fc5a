//! Continuous mode: a member of the consumer group, owning the partitions the
//! group assigns. A partition is loaded (and its intent replayed) when
//! assigned, dropped with its uncommitted buffer when revoked, and reloaded
//! from the checkpoint when another consumer wrote it.

use std::collections::btree_map::Entry;
use std::sync::mpsc;

use tracing::info;

use super::rebalance::Assignment;
use super::replay::load_partition;
use super::{Mode, Partitions};
use crate::context::Context;

pub(super) struct Group {
    events: mpsc::Receiver<Assignment>,
}

impl Group {
    pub fn new(events: mpsc::Receiver<Assignment>) -> Self {
        Group { events }
    }
}

impl Mode for Group {
    async fn take_rebalances(
        &mut self,
        ctx: &Context,
        partitions: &mut Partitions,
    ) -> anyhow::Result<()> {
        while let Ok(event) = self.events.try_recv() {
            match event {
                Assignment::Revoke(ids) => {
                    for p in ids {
                        // Uncommitted buffers are dropped: the next owner reads them again from the checkpoint.
                        if partitions.remove(&p).is_some() {
                            info!(partition = p, "partition revoked");
                        }
                    }
                }
                Assignment::Assign(ids) => {
                    for p in ids {
                        if let Entry::Vacant(slot) = partitions.entry(p) {
                            let part = load_partition(ctx, p).await?;
                            info!(
                                partition = p,
                                next_offset = part.next_offset(),
                                "partition assigned"
                            );
                            slot.insert(part);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Still assigned by the group: start over from whatever the other
    /// writer committed, rather than stall the partition.
    async fn lost(
        &mut self,
        ctx: &Context,
        p: i32,
        partitions: &mut Partitions,
    ) -> anyhow::Result<()> {
        partitions.insert(p, load_partition(ctx, p).await?);
        Ok(())
    }

    fn result(self) -> anyhow::Result<()> {
        Ok(())
    }
}
