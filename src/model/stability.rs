//! How fast the field of a model can change, from the model alone: the one bound every job
//! that steps the dynamics (run, cfm) uses to say why a state blew up and which step would
//! be stable (docs/model.md §2).

use super::{Attention, Model, spectral_norm};
use crate::integrate::tableau::Integrator;

/// A bound on the growth of the attention field of a model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Growth {
    /// The largest score beta <Qx, Kx> of unit tokens, beta |K^T Q| over the heads of every
    /// layer ([`Model::largest_score`]).
    pub exponent: f64,
    /// The heads' value norms summed, sum_h |V_h| (the largest over the layers; drawn heads:
    /// at least their scale).
    pub value_norm: f64,
    /// With ALiBi excluding a token from its own normaliser, lambda / n: its USA weight on
    /// itself reaches e^this (0 otherwise).
    pub alibi_exponent: f64,
    /// A bound on the field's Lipschitz constant: the softmax mean moves by at most
    /// 2 beta |K^T Q| |V| per unit move of a token and the projection adds |V|, times USA's
    /// unnormalised weights (up to e^exponent) and ALiBi's (up to e^alibi_exponent).
    pub lipschitz: f64,
}

impl Growth {
    /// The bound of `model` with `n_keys` keys (ALiBi's slope is lambda / n_keys).
    pub fn of(model: &Model, n_keys: usize) -> Self {
        let exponent = model.largest_score();
        let layers: Vec<&[super::Weights]> =
            match model.per_layer.as_ref().and_then(|p| p.heads.as_ref()) {
                Some(layers) => layers.iter().map(Vec::as_slice).collect(),
                None => vec![model.heads.as_slice()],
            };
        let value_norm = layers
            .iter()
            .map(|heads| heads.iter().map(|w| spectral_norm(&w.v, w.d)).sum::<f64>())
            .fold(0.0, f64::max)
            .max(model.random.map_or(0.0, |r| r.scale));
        let usa_scale = if model.attention == Attention::Usa {
            exponent.min(700.0).exp()
        } else {
            1.0
        };
        let alibi_exponent = if model.alibi.is_some_and(|a| a.excludes_self) {
            model.alibi_slope(n_keys)
        } else {
            0.0
        };
        let alibi_scale = alibi_exponent.min(700.0).exp();
        Growth {
            exponent,
            value_norm,
            alibi_exponent,
            lipschitz: value_norm * (1.0 + 2.0 * exponent) * usa_scale * alibi_scale,
        }
    }

    /// The longest step `integrator` takes stably on this field: Euler below about 1 / L,
    /// Heun and RK4 below about 2 / L.
    pub fn stable_h(&self, integrator: Integrator) -> f64 {
        let reach = if integrator == Integrator::Euler {
            1.0
        } else {
            2.0
        };
        reach / self.lipschitz.max(1e-300)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Alibi, Geometry, Mask, Weights};

    /// The bound of the plain model: identity heads, beta 2: exponent 2, |V| = 1,
    /// L = 1 + 2 * 2 = 5; USA multiplies by e^2; two heads add their |V|; ALiBi excluding self
    /// multiplies by e^(lambda / n).
    #[test]
    fn the_bound_of_known_models() {
        let sa = Model::new(
            Attention::Sa,
            Geometry::Sphere,
            Mask::Causal,
            Weights::identity(3),
            vec![2.0, 1.0],
        );
        let g = Growth::of(&sa, 10);
        assert!((g.exponent - 2.0).abs() < 1e-9, "{g:?}");
        assert!((g.value_norm - 1.0).abs() < 1e-9, "{g:?}");
        assert!((g.lipschitz - 5.0).abs() < 1e-8, "{g:?}");
        assert!((g.stable_h(Integrator::Rk4) - 0.4).abs() < 1e-9);
        assert!((g.stable_h(Integrator::Euler) - 0.2).abs() < 1e-9);
        let mut usa = sa.clone();
        usa.attention = Attention::Usa;
        usa.heads.push(Weights::identity(3));
        let g = Growth::of(&usa, 10);
        assert!((g.lipschitz - 2.0 * 5.0 * 2f64.exp()).abs() < 1e-8, "{g:?}");
        usa.alibi = Some(Alibi {
            slope: 30.0,
            excludes_self: true,
        });
        let g = Growth::of(&usa, 10);
        assert!((g.alibi_exponent - 3.0).abs() < 1e-12, "{g:?}");
        assert!(
            (g.lipschitz - 2.0 * 5.0 * 2f64.exp() * 3f64.exp()).abs() < 1e-6,
            "{g:?}"
        );
    }
}
