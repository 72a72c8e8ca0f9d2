//! `GET /system/df` and `ps -s`: what images, containers and volumes hold on disk, as
//! dockerd 20.10 adds it up. A layer counts once however many images share it; a container's
//! own bytes are those of its writable layer (moby's `directory.Size` of the overlay's upper
//! directory), its root's those and its image's.

use std::collections::HashMap;

use crate::supervisor::api::types::{DiskUsage, VolumeUsageData};
use crate::supervisor::engine::error::Result;
use crate::supervisor::engine::volumes::disk_usage;
use crate::supervisor::image::store::chain_ids;
use crate::supervisor::rules::filters::{Filters, ListOptions};

impl crate::supervisor::engine::Daemon {
    /// A container's `SizeRw` and `SizeRootFs` (both 0 for a `--rootfs` container, which has
    /// no layer of its own).
    pub fn sizes(&self, id: &str) -> (i64, i64) {
        let Ok(c) = self.find(id) else { return (0, 0) };
        let Some(image) = c.record().image.clone() else { return (0, 0) };
        let rw = disk_usage(&self.store.dir(&c.id).join("fs").join("diff"));
        let layers: u64 = self.images.layers(&image.id).iter().map(|l| l.size).sum();
        (to_i64(rw), to_i64(rw + layers))
    }

    /// `GET /system/df`.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let all = ListOptions { all: true, size: true, ..ListOptions::default() };
        let containers = self.list(&all)?;
        let mut images =
            crate::supervisor::image::list::list(&self.images, &Filters::default(), false)?;
        // Each layer (by chain ID, as moby's layer store keys it) with its size and how many
        // images hold it.
        let layers_of: HashMap<String, Vec<(String, u64)>> = images
            .iter()
            .map(|i| {
                let records = self.images.layers(&i.id);
                let chain = chain_ids(&records).into_iter().zip(records.iter().map(|l| l.size));
                (i.id.clone(), chain.collect())
            })
            .collect();
        let mut holders: HashMap<&str, (u64, usize)> = HashMap::new();
        for layers in layers_of.values() {
            for (chain, size) in layers {
                holders.entry(chain).or_insert((*size, 0)).1 += 1;
            }
        }
        for i in &mut images {
            i.containers = containers.iter().filter(|c| c.image_id == i.id).count() as i64;
            let shared: u64 = layers_of[&i.id]
                .iter()
                .filter(|(chain, _)| holders.get(chain.as_str()).is_some_and(|h| h.1 > 1))
                .map(|(_, size)| size)
                .sum();
            i.shared_size = to_i64(shared);
        }
        let layers_size = to_i64(holders.values().map(|h| h.0).sum());
        let users = self.volumes_in_use();
        let volumes = self
            .volumes
            .list()
            .into_iter()
            .map(|mut v| {
                v.usage_data = Some(VolumeUsageData {
                    ref_count: users.get(&v.name).map_or(0, |u| u.len() as i64),
                    size: to_i64(disk_usage(&self.volumes.data(&v.name))),
                });
                v
            })
            .collect();
        Ok(DiskUsage {
            layers_size,
            images,
            containers,
            volumes,
            build_cache: None,
            builder_size: 0,
        })
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
