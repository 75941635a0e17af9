//! Butcher tableaux of the explicit methods attnflow offers (docs/model.md §2).

use serde::{Deserialize, Serialize};

/// The integrators a user can choose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lowercase")]
pub enum Integrator {
    /// x <- x + h f(x): exactly one residual transformer layer. Order 1.
    Euler,
    /// Heun's method (explicit trapezoid), order 2.
    Heun,
    /// The classical fourth-order Runge-Kutta method.
    Rk4,
    /// Bogacki-Shampine 3(2), adaptive (error control, `--rtol`, `--atol`).
    Bosh3,
    /// Dormand-Prince 5(4), adaptive, with Shampine's dense output of order 4.
    Dopri5,
    /// Tsitouras 5(4), adaptive.
    Tsit5,
    /// Shampine's Rosenbrock 2(3) W-method, adaptive and L-stable, its linear systems solved
    /// matrix-free by GMRES on the f64 reference field (`integrate::rosenbrock`): for
    /// metastable dynamics over long times.
    Ros23,
}

impl Integrator {
    /// The method's propagating tableau (for an adaptive pair, the solution it keeps).
    ///
    /// # Panics
    /// For ros23, which is linearly implicit and has none: the fixed-step engine
    /// ([`super::Stepper::new`]) and `cfm` refuse it with a message before asking.
    pub fn tableau(self) -> Tableau {
        match self {
            Integrator::Bosh3 | Integrator::Dopri5 | Integrator::Tsit5 => {
                self.pair().expect("an adaptive method").tableau
            }
            // Every job that takes a tableau refuses ros23 first (Stepper::new, cfm).
            Integrator::Ros23 => {
                unreachable!("ros23 is linearly implicit: it has no explicit tableau")
            }
            Integrator::Euler => Tableau {
                a: vec![vec![]],
                b: vec![1.0],
                c: vec![0.0],
                order: 1,
            },
            Integrator::Heun => Tableau {
                a: vec![vec![], vec![1.0]],
                b: vec![0.5, 0.5],
                c: vec![0.0, 1.0],
                order: 2,
            },
            Integrator::Rk4 => Tableau {
                a: vec![vec![], vec![0.5], vec![0.0, 0.5], vec![0.0, 0.0, 1.0]],
                b: vec![1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0],
                c: vec![0.0, 0.5, 0.5, 1.0],
                order: 4,
            },
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Integrator::Euler => "euler",
            Integrator::Heun => "heun",
            Integrator::Rk4 => "rk4",
            Integrator::Bosh3 => "bosh3",
            Integrator::Dopri5 => "dopri5",
            Integrator::Tsit5 => "tsit5",
            Integrator::Ros23 => "ros23",
        }
    }
    /// Whether the method steps adaptively (an embedded pair, or ros23, with error control).
    pub fn is_adaptive(self) -> bool {
        self.pair().is_some() || self == Integrator::Ros23
    }
    /// The embedded pair of an adaptive method.
    pub fn pair(self) -> Option<Pair> {
        match self {
            Integrator::Bosh3 => Some(Pair::bosh3()),
            Integrator::Dopri5 => Some(Pair::dopri5()),
            Integrator::Tsit5 => Some(Pair::tsit5()),
            _ => None,
        }
    }
}

/// How a pair estimates its local error from its stages.
#[derive(Clone, Debug, PartialEq)]
pub enum ErrorWeights {
    /// e = h sum_s w_s k_s with w = b - b_hat (b_hat the embedded solution's weights).
    Single(Vec<f64>),
    /// DOP853's blend of its 5th- and 3rd-order estimates (Hairer, Norsett & Wanner I,
    /// II.10): err = |e5|^2 / sqrt(|e5|^2 + 0.01 |e3|^2), norms scaled as in the single case.
    Dop853 { e5: Vec<f64>, e3: Vec<f64> },
}

/// An embedded Runge-Kutta pair: the tableau of the solution kept (order `tableau.order`),
/// the weights of its error estimate (local error of order `error_order` + 1 in h, which sets
/// the controller's exponents), whether the last stage is evaluated at the new solution
/// (FSAL, so it is the next step's first), and its dense output where it has one.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    pub name: &'static str,
    pub tableau: Tableau,
    pub error: ErrorWeights,
    pub error_order: u32,
    pub fsal: bool,
    /// Dense output x(t + theta h) = x + h sum_s w_s(theta) k_s (docs/model.md §2): the cubic
    /// Hermite interpolant of (x, k_0, x_new, k_last) plus theta^2 (1 - theta)^2 sum_s d_s k_s
    /// (Shampine's order-4 correction for dopri5; zero for the others, order 3). Only FSAL
    /// pairs have it (k_last = f(x_new)); None: steps are shortened to land on output times.
    pub dense: Option<Vec<f64>>,
}

impl Pair {
    /// Bogacki & Shampine (1989), 3(2), FSAL, 4 stages.
    pub fn bosh3() -> Self {
        let b = vec![2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0, 0.0];
        let b_hat = [7.0 / 24.0, 1.0 / 4.0, 1.0 / 3.0, 1.0 / 8.0];
        Pair {
            name: "bosh3",
            tableau: Tableau {
                a: vec![vec![], vec![0.5], vec![0.0, 0.75], b[..3].to_vec()],
                c: vec![0.0, 0.5, 0.75, 1.0],
                b: b.clone(),
                order: 3,
            },
            error: ErrorWeights::Single(b.iter().zip(b_hat).map(|(b, h)| b - h).collect()),
            error_order: 2,
            fsal: true,
            dense: Some(vec![0.0; 4]),
        }
    }

    /// Dormand & Prince (1980), 5(4), FSAL, 7 stages, with Shampine's (1986) dense output as
    /// in Hairer's DOPRI5.
    pub fn dopri5() -> Self {
        let b = vec![
            35.0 / 384.0,
            0.0,
            500.0 / 1113.0,
            125.0 / 192.0,
            -2187.0 / 6784.0,
            11.0 / 84.0,
            0.0,
        ];
        let e = vec![
            71.0 / 57600.0,
            0.0,
            -71.0 / 16695.0,
            71.0 / 1920.0,
            -17253.0 / 339200.0,
            22.0 / 525.0,
            -1.0 / 40.0,
        ];
        Pair {
            name: "dopri5",
            tableau: Tableau {
                a: vec![
                    vec![],
                    vec![1.0 / 5.0],
                    vec![3.0 / 40.0, 9.0 / 40.0],
                    vec![44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
                    vec![
                        19372.0 / 6561.0,
                        -25360.0 / 2187.0,
                        64448.0 / 6561.0,
                        -212.0 / 729.0,
                    ],
                    vec![
                        9017.0 / 3168.0,
                        -355.0 / 33.0,
                        46732.0 / 5247.0,
                        49.0 / 176.0,
                        -5103.0 / 18656.0,
                    ],
                    b[..6].to_vec(),
                ],
                c: vec![0.0, 0.2, 0.3, 0.8, 8.0 / 9.0, 1.0, 1.0],
                b,
                order: 5,
            },
            error: ErrorWeights::Single(e),
            error_order: 4,
            fsal: true,
            dense: Some(vec![
                -12715105075.0 / 11282082432.0,
                0.0,
                87487479700.0 / 32700410799.0,
                -10690763975.0 / 1880347072.0,
                701980252875.0 / 199316789632.0,
                -1453857185.0 / 822651844.0,
                69997945.0 / 29380423.0,
            ]),
        }
    }

    /// Tsitouras (2011), 5(4), FSAL, 7 stages (the coefficients of OrdinaryDiffEq.jl's
    /// Tsit5, which satisfy the simplifying assumptions to about 1e-16). Dense output: the
    /// Hermite cubic (order 3), not Tsitouras's own interpolant.
    #[allow(clippy::excessive_precision)] // the published values, kept verbatim
    pub fn tsit5() -> Self {
        let b = vec![
            0.09646076681806523,
            0.01,
            0.4798896504144996,
            1.379008574103742,
            -3.290069515436081,
            2.324710524099774,
            0.0,
        ];
        let e = vec![
            -0.00178001105222577714,
            -0.0008164344596567469,
            0.007880878010261995,
            -0.1447110071732629,
            0.5823571654525552,
            -0.45808210592918697,
            1.0 / 66.0,
        ];
        Pair {
            name: "tsit5",
            tableau: Tableau {
                a: vec![
                    vec![],
                    vec![0.161],
                    vec![-0.008480655492356989, 0.335480655492357],
                    vec![2.8971530571054935, -6.359448489975075, 4.3622954328695815],
                    vec![
                        5.325864828439257,
                        -11.748883564062828,
                        7.4955393428898365,
                        -0.09249506636175525,
                    ],
                    vec![
                        5.86145544294642,
                        -12.92096931784711,
                        8.159367898576159,
                        -0.071584973281401,
                        -0.028269050394068383,
                    ],
                    b[..6].to_vec(),
                ],
                c: vec![0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0],
                b,
                order: 5,
            },
            error: ErrorWeights::Single(e),
            error_order: 4,
            fsal: true,
            dense: Some(vec![0.0; 7]),
        }
    }

    /// DOP853 (Hairer, Norsett & Wanner I), 8(5,3), 12 stages, no dense output here (the
    /// engine of the infinite-context twins).
    pub fn dop853() -> Self {
        use dop853::{A, B, C, E3, E5, STAGES};
        Pair {
            name: "dop853",
            tableau: Tableau {
                a: (0..STAGES).map(|s| A[s][..s].to_vec()).collect(),
                b: B.to_vec(),
                c: C.to_vec(),
                order: 8,
            },
            error: ErrorWeights::Dop853 {
                e5: E5.to_vec(),
                e3: E3.to_vec(),
            },
            error_order: 7,
            fsal: false,
            dense: None,
        }
    }

    pub fn stages(&self) -> usize {
        self.tableau.stages()
    }

    /// The dense-output weights w_s(theta) of docs/model.md §2, into `w` (one per stage).
    pub fn dense_weights(&self, theta: f64, w: &mut [f64]) {
        let d = self.dense.as_ref().expect("a pair with dense output");
        let last = self.stages() - 1;
        let (t, u) = (theta, 1.0 - theta);
        for (s, w) in w.iter_mut().enumerate() {
            let b = self.tableau.b[s];
            let first = if s == 0 { 1.0 } else { 0.0 };
            let fsal = if s == last { 1.0 } else { 0.0 };
            *w = t * b
                + t * u * (first - b)
                + t * t * u * (2.0 * b - first - fsal)
                + t * t * u * u * d[s];
        }
    }
}

/// An explicit Runge-Kutta method: stage s evaluates f at x + h sum_{j<s} a[s][j] k_j, and
/// the step is x + h sum_s b[s] k_s.
#[derive(Clone, Debug, PartialEq)]
pub struct Tableau {
    pub a: Vec<Vec<f64>>,
    pub b: Vec<f64>,
    pub c: Vec<f64>,
    pub order: u32,
}

impl Tableau {
    pub fn stages(&self) -> usize {
        self.b.len()
    }
}

/// Dormand-Prince 8(5,3) coefficients (Hairer, Norsett & Wanner, Solving ODEs I; the
/// 12 stages of the step, without the dense-output stages).
#[allow(clippy::excessive_precision)] // the published 30-digit values, kept verbatim
pub mod dop853 {
    pub const STAGES: usize = 12;

    pub const C: [f64; STAGES] = [
        0.0,
        0.526001519587677318785587544488e-01,
        0.789002279381515978178381316732e-01,
        0.118350341907227396726757197510,
        0.281649658092772603273242802490,
        0.333333333333333333333333333333,
        0.25,
        0.307692307692307692307692307692,
        0.651282051282051282051282051282,
        0.6,
        0.857142857142857142857142857142,
        1.0,
    ];

    /// A[i][j] for j < i (row 0 unused).
    pub const A: [[f64; STAGES]; STAGES] = {
        let mut a = [[0.0; STAGES]; STAGES];
        a[1][0] = 5.26001519587677318785587544488e-2;

        a[2][0] = 1.97250569845378994544595329183e-2;
        a[2][1] = 5.91751709536136983633785987549e-2;

        a[3][0] = 2.95875854768068491816892993775e-2;
        a[3][2] = 8.87627564304205475450678981324e-2;

        a[4][0] = 2.41365134159266685502369798665e-1;
        a[4][2] = -8.84549479328286085344864962717e-1;
        a[4][3] = 9.24834003261792003115737966543e-1;

        a[5][0] = 3.7037037037037037037037037037e-2;
        a[5][3] = 1.70828608729473871279604482173e-1;
        a[5][4] = 1.25467687566822425016691814123e-1;

        a[6][0] = 3.7109375e-2;
        a[6][3] = 1.70252211019544039314978060272e-1;
        a[6][4] = 6.02165389804559606850219397283e-2;
        a[6][5] = -1.7578125e-2;

        a[7][0] = 3.70920001185047927108779319836e-2;
        a[7][3] = 1.70383925712239993810214054705e-1;
        a[7][4] = 1.07262030446373284651809199168e-1;
        a[7][5] = -1.53194377486244017527936158236e-2;
        a[7][6] = 8.27378916381402288758473766002e-3;

        a[8][0] = 6.24110958716075717114429577812e-1;
        a[8][3] = -3.36089262944694129406857109825;
        a[8][4] = -8.68219346841726006818189891453e-1;
        a[8][5] = 2.75920996994467083049415600797e1;
        a[8][6] = 2.01540675504778934086186788979e1;
        a[8][7] = -4.34898841810699588477366255144e1;

        a[9][0] = 4.77662536438264365890433908527e-1;
        a[9][3] = -2.48811461997166764192642586468;
        a[9][4] = -5.90290826836842996371446475743e-1;
        a[9][5] = 2.12300514481811942347288949897e1;
        a[9][6] = 1.52792336328824235832596922938e1;
        a[9][7] = -3.32882109689848629194453265587e1;
        a[9][8] = -2.03312017085086261358222928593e-2;

        a[10][0] = -9.3714243008598732571704021658e-1;
        a[10][3] = 5.18637242884406370830023853209;
        a[10][4] = 1.09143734899672957818500254654;
        a[10][5] = -8.14978701074692612513997267357;
        a[10][6] = -1.85200656599969598641566180701e1;
        a[10][7] = 2.27394870993505042818970056734e1;
        a[10][8] = 2.49360555267965238987089396762;
        a[10][9] = -3.0467644718982195003823669022;

        a[11][0] = 2.27331014751653820792359768449;
        a[11][3] = -1.05344954667372501984066689879e1;
        a[11][4] = -2.00087205822486249909675718444;
        a[11][5] = -1.79589318631187989172765950534e1;
        a[11][6] = 2.79488845294199600508499808837e1;
        a[11][7] = -2.85899827713502369474065508674;
        a[11][8] = -8.87285693353062954433549289258;
        a[11][9] = 1.23605671757943030647266201528e1;
        a[11][10] = 6.43392746015763530355970484046e-1;
        a
    };

    /// The 8th-order weights.
    pub const B: [f64; STAGES] = [
        5.42937341165687622380535766363e-2,
        0.0,
        0.0,
        0.0,
        0.0,
        4.45031289275240888144113950566,
        1.89151789931450038304281599044,
        -5.8012039600105847814672114227,
        3.1116436695781989440891606237e-1,
        -1.52160949662516078556178806805e-1,
        2.01365400804030348374776537501e-1,
        4.47106157277725905176885569043e-2,
    ];

    /// B minus the embedded 3rd-order weights.
    pub const E3: [f64; STAGES] = [
        B[0] - 0.244094488188976377952755905512,
        0.0,
        0.0,
        0.0,
        0.0,
        B[5],
        B[6],
        B[7],
        B[8] - 0.733846688281611857341361741547,
        B[9],
        B[10],
        B[11] - 0.220588235294117647058823529412e-1,
    ];

    /// B minus the embedded 5th-order weights.
    pub const E5: [f64; STAGES] = [
        0.1312004499419488073250102996e-1,
        0.0,
        0.0,
        0.0,
        0.0,
        -0.1225156446376204440720569753e1,
        -0.4957589496572501915214079952,
        0.1664377182454986536961530415e1,
        -0.3503288487499736816886487290,
        0.3341791187130174790297318841,
        0.8192320648511571246570742613e-1,
        -0.2235530786388629525884427845e-1,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order conditions of the pairs up to order 5 (the trees of Butcher's theory,
    /// written with c = A 1): each solution satisfies those of its order, the embedded one
    /// (b - e) those of its own, FSAL pairs have b as their last row, and the dense output
    /// is the solution at theta = 1 and the state at theta = 0.
    #[test]
    fn pairs_satisfy_their_order_conditions() {
        fn conditions(a: &[Vec<f64>], b: &[f64], c: &[f64], order: u32) -> Vec<(String, f64)> {
            let s = b.len();
            let am = |v: &[f64]| -> Vec<f64> {
                (0..s)
                    .map(|i| a[i].iter().zip(v).map(|(x, y)| x * y).sum())
                    .collect()
            };
            let dotb = |v: &[f64]| -> f64 { b.iter().zip(v).map(|(x, y)| x * y).sum() };
            let pw = |k: i32| -> Vec<f64> { c.iter().map(|x| x.powi(k)).collect() };
            let mul = |u: &[f64], v: &[f64]| -> Vec<f64> {
                u.iter().zip(v).map(|(x, y)| x * y).collect()
            };
            let one = vec![1.0; s];
            let mut out = vec![("b.1".to_string(), dotb(&one) - 1.0)];
            if order >= 2 {
                out.push(("b.c".into(), dotb(c) - 0.5));
            }
            if order >= 3 {
                out.push(("b.c2".into(), dotb(&pw(2)) - 1.0 / 3.0));
                out.push(("b.Ac".into(), dotb(&am(c)) - 1.0 / 6.0));
            }
            if order >= 4 {
                out.push(("b.c3".into(), dotb(&pw(3)) - 0.25));
                out.push(("b.cAc".into(), dotb(&mul(c, &am(c))) - 0.125));
                out.push(("b.Ac2".into(), dotb(&am(&pw(2))) - 1.0 / 12.0));
                out.push(("b.AAc".into(), dotb(&am(&am(c))) - 1.0 / 24.0));
            }
            if order >= 5 {
                let ac = am(c);
                out.push(("b.c4".into(), dotb(&pw(4)) - 0.2));
                out.push(("b.c2Ac".into(), dotb(&mul(&pw(2), &ac)) - 0.1));
                out.push(("b.AcAc".into(), dotb(&mul(&ac, &ac)) - 0.05));
                out.push(("b.cAc2".into(), dotb(&mul(c, &am(&pw(2)))) - 1.0 / 15.0));
                out.push(("b.Ac3".into(), dotb(&am(&pw(3))) - 0.05));
                out.push(("b.cAAc".into(), dotb(&mul(c, &am(&ac))) - 1.0 / 30.0));
                out.push(("b.AcAc'".into(), dotb(&am(&mul(c, &ac))) - 1.0 / 40.0));
                out.push(("b.AAc2".into(), dotb(&am(&am(&pw(2)))) - 1.0 / 60.0));
                out.push(("b.AAAc".into(), dotb(&am(&am(&ac))) - 1.0 / 120.0));
            }
            out
        }
        for pair in [Pair::bosh3(), Pair::dopri5(), Pair::tsit5(), Pair::dop853()] {
            let t = &pair.tableau;
            for s in 0..t.stages() {
                let row: f64 = t.a[s].iter().sum();
                assert!((row - t.c[s]).abs() < 1e-14, "{} row {s}", pair.name);
            }
            let embedded: Vec<f64> = match &pair.error {
                ErrorWeights::Single(e) => t.b.iter().zip(e).map(|(b, e)| b - e).collect(),
                ErrorWeights::Dop853 { e5, .. } => t.b.iter().zip(e5).map(|(b, e)| b - e).collect(),
            };
            let low = if pair.name == "dop853" {
                5
            } else {
                pair.error_order
            };
            for (b, order, what) in [
                (&t.b, t.order.min(5), "solution"),
                (&embedded, low, "embedded"),
            ] {
                for (name, residual) in conditions(&t.a, b, &t.c, order) {
                    assert!(
                        residual.abs() < 1e-13,
                        "{} {what}: condition {name} off by {residual:e}",
                        pair.name
                    );
                }
            }
            // The embedded solution is of exactly its order: it misses one of the next
            // (checked up to order 5, the conditions written here).
            let next = conditions(&t.a, &embedded, &t.c, low + 1);
            assert!(
                low >= 5 || next.iter().any(|(_, r)| r.abs() > 1e-6),
                "{}: the embedded solution is of higher order than {low}",
                pair.name
            );
            if pair.fsal {
                let last = t.stages() - 1;
                assert_eq!(t.a[last], t.b[..last], "{} is not FSAL", pair.name);
                assert_eq!(t.b[last], 0.0);
            }
            if pair.dense.is_some() {
                let mut w = vec![0.0; t.stages()];
                pair.dense_weights(1.0, &mut w);
                for (w, b) in w.iter().zip(&t.b) {
                    assert!((w - b).abs() < 1e-15, "{}: dense at 1", pair.name);
                }
                pair.dense_weights(0.0, &mut w);
                assert!(w.iter().all(|w| *w == 0.0));
            }
        }
    }

    /// Consistency (sum b = 1) and the row-sum condition c_s = sum_j a_sj.
    #[test]
    fn tableaux_are_consistent() {
        for m in [Integrator::Euler, Integrator::Heun, Integrator::Rk4] {
            let t = m.tableau();
            assert!((t.b.iter().sum::<f64>() - 1.0).abs() < 1e-15, "{m:?}");
            for s in 0..t.stages() {
                let row: f64 = t.a[s].iter().sum();
                assert!((row - t.c[s]).abs() < 1e-15, "{m:?} stage {s}");
                assert!(t.a[s].len() == s, "{m:?} is not explicit at stage {s}");
            }
        }
    }
}
