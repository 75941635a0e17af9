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
}

impl Integrator {
    pub fn tableau(self) -> Tableau {
        match self {
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
