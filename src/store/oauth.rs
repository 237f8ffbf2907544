//! The OAuth 2.0 refresh tokens of the mailboxes that use the refresh-token flow, one per
//! mailbox and client (see [`crate::oauth::token_key`]). They live in their own sled tree,
//! outside the scheduling data, and are never logged or exported.

use super::{Store, StoreError};

/// The sled tree of the refresh tokens.
const TREE: &str = "oauth_tokens";

impl Store {
    /// The refresh token stored under `key`, if any.
    pub fn oauth_refresh_token(&self, key: &str) -> Result<Option<String>, StoreError> {
        let tree = self.db.open_tree(TREE)?;
        Ok(tree
            .get(key.as_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Stores (or replaces) the refresh token under `key` and flushes it: a provider that
    /// rotates refresh tokens has already invalidated the old one.
    pub async fn set_oauth_refresh_token(&self, key: &str, token: &str) -> Result<(), StoreError> {
        let tree = self.db.open_tree(TREE)?;
        tree.insert(key.as_bytes(), token.as_bytes())?;
        tree.flush_async().await?;
        Ok(())
    }

    /// Removes the refresh token under `key`; returns whether there was one.
    pub async fn remove_oauth_refresh_token(&self, key: &str) -> Result<bool, StoreError> {
        let tree = self.db.open_tree(TREE)?;
        let had = tree.remove(key.as_bytes())?.is_some();
        tree.flush_async().await?;
        Ok(had)
    }
}
