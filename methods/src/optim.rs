//! AdamW (Loshchilov & Hutter) with its state exposed, so a checkpoint can hold the moments and a
//! resumed run continues bit for bit where the interrupted one stopped. (candle-nn's AdamW keeps
//! its moments private.) Gradients come from candle's autograd; this is only the update rule.

use std::collections::BTreeMap;

use candle_core::{Tensor, Var, backprop::GradStore};

use crate::error::Result;

/// AdamW hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 2e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-4,
        }
    }
}

/// AdamW state: step count and both moments per variable name.
pub struct AdamW {
    /// Hyper-parameters.
    pub config: AdamWConfig,
    /// Updates applied so far.
    pub step: u64,
    /// First moments by variable name.
    pub m: BTreeMap<String, Tensor>,
    /// Second moments by variable name.
    pub v: BTreeMap<String, Tensor>,
}

impl AdamW {
    /// Fresh state (zero moments) for the given variables.
    pub fn new(config: AdamWConfig, vars: &BTreeMap<String, Var>) -> Result<Self> {
        let mut m = BTreeMap::new();
        let mut v = BTreeMap::new();
        for (name, var) in vars {
            m.insert(name.clone(), var.as_tensor().zeros_like()?);
            v.insert(name.clone(), var.as_tensor().zeros_like()?);
        }
        Ok(AdamW {
            config,
            step: 0,
            m,
            v,
        })
    }

    /// Applies one update with learning rate `lr` (the schedule's current value).
    pub fn step(&mut self, vars: &BTreeMap<String, Var>, grads: &GradStore, lr: f64) -> Result<()> {
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2 = 1.0 - c.beta2.powi(t);
        for (name, var) in vars {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let m = self
                .m
                .get_mut(name)
                .expect("moment exists for every variable");
            // Gradients carry their autograd history; detaching keeps the moments from holding
            // every past step's graph (and its activations) alive.
            let g = g.detach();
            *m = ((&*m * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            let v = self
                .v
                .get_mut(name)
                .expect("moment exists for every variable");
            *v = ((&*v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let m_hat = (&*m / bias1)?;
            let v_hat = (&*v / bias2)?;
            let w = var.as_tensor().detach();
            let update = (m_hat / (v_hat.sqrt()? + c.eps)?)?;
            let next = ((w * (1.0 - lr * c.weight_decay))? - (update * lr)?)?.detach();
            var.set(&next)?;
        }
        Ok(())
    }
}
