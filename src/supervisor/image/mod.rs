//! Local images, stored content-addressed as Docker and OCI store them: `import` of a root
//! filesystem tarball, `load`/`save` of Docker's image archive and the OCI image layout, tags,
//! removal and prune, and what `images`, `image inspect` and `history` show.
//!
//! Beside [`crate::supervisor::engine`], which holds the [`store::ImageStore`] in its
//! `Daemon`; errors are the engine's typed [`crate::supervisor::engine::Error`]. The HTTP
//! layer ([`crate::supervisor::http`]) calls it on blocking threads. Layers are only read
//! through (checksummed, their tar entries counted) until a container needs them: [`unpack`]
//! extracts each into a directory of its own, the lower directories of containers' overlays.
//!
//! - [`reference`](mod@reference): image references (`[REGISTRY/]REPO[:TAG|@DIGEST]`), Docker's rules and
//!   words; pure.
//! - [`config`]: the image config (OCI's and Docker's fields) and `import --change`; pure.
//! - [`layer`]: a layer's compression, digests and size, read as a stream.
//! - [`store`]: blobs, the index of images and tags, removal, the API's views; [`list`]:
//!   `images` and its filters.
//! - [`import`], [`archive`]: `docker import`; `docker save` and `docker load`.
//! - [`commit`](mod@commit): `docker commit`'s request, checked (the engine makes the image).
//! - [`pull`]: `docker pull` from a registry (`oci-client`), verified before it is stored.

pub mod archive;
pub mod commit;
pub mod config;
pub mod import;
pub mod layer;
pub mod list;
pub mod pull;
pub mod reference;
pub mod store;
pub mod unpack;
