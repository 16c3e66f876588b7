//! The subscription decision for one request (apim-reference.md §5.3): which subscription and
//! product context apply, or which 401.

use super::model::Gateway;
use super::subscriptions::SubScope;
use crate::config::SubscriptionState;
use crate::exec::ErrorKind;

/// The outcome of a successful decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub subscription: Option<usize>,
    /// Product context (index into `Gateway::products`), when product policies apply.
    pub product: Option<usize>,
    /// Index into `Operation::pipelines` for this product context.
    pub pipeline: usize,
}

pub fn decide(gw: &Gateway, api_idx: usize, key: Option<&str>) -> Result<Access, ErrorKind> {
    let api = &gw.apis[api_idx];
    let pipeline_of = |product: Option<usize>| {
        product
            .and_then(|p| api.products.iter().position(|&x| x == p))
            .map_or(0, |k| k + 1)
    };
    match key {
        Some(key) => {
            let (si, sub) = gw
                .subscriptions
                .find(key)
                .ok_or(ErrorKind::SubscriptionKeyInvalid)?;
            if sub.state != SubscriptionState::Active {
                return Err(ErrorKind::SubscriptionKeyInvalid);
            }
            let product = match sub.scope {
                SubScope::Api(a) if a == api_idx => None,
                SubScope::Product(p) if gw.products[p].apis.contains(&api_idx) => Some(p),
                SubScope::AllApis | SubScope::AllAccess => None,
                _ => return Err(ErrorKind::SubscriptionKeyInvalid),
            };
            Ok(Access {
                subscription: Some(si),
                product,
                pipeline: pipeline_of(product),
            })
        }
        None => {
            if let Some(p) = api.open_product {
                Ok(Access {
                    subscription: None,
                    product: Some(p),
                    pipeline: pipeline_of(Some(p)),
                })
            } else if !api.subscription_required {
                Ok(Access {
                    subscription: None,
                    product: None,
                    pipeline: 0,
                })
            } else {
                Err(ErrorKind::SubscriptionKeyNotFound)
            }
        }
    }
}
