//! Docker `-p` port specs (being written; see issue 3).
