//! The engines behind the `redisext` command, built on the `redisext` library and
//! kept out of it, so that no library user compiles them:
//!
//! - [`lint`](mod@lint): static checks of Lua scripts against the conventions every
//!   redisext script follows (`redisext scripts lint`);
//! - [`bench`](mod@bench): what atomicity costs, the library's script path measured against
//!   hand-written `EVALSHA`, plain commands and `WATCH`/`MULTI`/`EXEC`
//!   (`redisext bench` and `cargo bench`).
//!
//! The command itself is this crate's binary, `redisext`:
//!
//! ```sh
//! cargo install redisext-cli        # or, in the repository: cargo run -p redisext-cli --
//! redisext scripts list
//! redisext scripts lint
//! redisext scripts verify --url redis://127.0.0.1:6379/0
//! redisext bench --quick
//! ```

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod bench;
pub mod lint;
