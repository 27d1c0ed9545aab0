//! The claims report (`claims.md`) and the index (`index.md`) of a run's figures folder.

use std::path::Path;

use crate::Rendered;
use crate::input::FigureInput;
use crate::table::markdown::escape;

/// Renders the claims beside their reproductions; `n/a` where the run lacks the quantity.
pub fn claims_markdown(input: &FigureInput) -> String {
    let mut out = format!(
        "# Published claims vs this run\n\nRun `{}` ({}), dataset {}. \
         **dataset differs** marks a reproduction measured on another dataset than the claim.\n\n",
        escape(&input.run_id),
        escape(&input.title),
        escape(&input.dataset)
    );
    if input.claims.is_empty() {
        out.push_str("No claims were given for this run.\n");
        return out;
    }
    out.push_str("| Claim | Quantity | Published | Published on | Reproduced | Reproduced on | Source | Note |\n");
    out.push_str("|:--|:--|--:|:--|--:|:--|:--|:--|\n");
    let mut any_missing = false;
    for c in &input.claims {
        let reproduced = match &c.reproduced {
            Some(v) => escape(v),
            None => {
                any_missing = true;
                "n/a[^na]".to_string()
            }
        };
        let on = if c.dataset_differs {
            format!("{} (**dataset differs**)", escape(&c.reproduced_dataset))
        } else {
            escape(&c.reproduced_dataset)
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |\n",
            escape(&c.id),
            escape(&c.quantity),
            escape(&c.published),
            escape(&c.published_dataset),
            reproduced,
            on,
            escape(&c.source),
            escape(&c.note),
        ));
    }
    if any_missing {
        out.push_str(
            "\n[^na]: n/a: this run did not measure the matching quantity (see the note).\n",
        );
    }
    out
}

/// Renders the index: provenance, then every table, figure and report with links.
pub fn index_markdown(input: &FigureInput, input_sha256: &str, rendered: &Rendered) -> String {
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let link = |p: &Path| format!("[{0}]({0})", name(p));
    let mut out = format!(
        "# {} — tables and figures\n\nRun `{}`, dataset {}.\n\n## Provenance\n\n\
         Every file below is rendered by qbench-figures {} from this run's figure input \
         (sha256 of its JSON form `{}`); nothing here is computed beyond formatting, ratios \
         (claims) and the Pareto front.\n\n| Key | Value |\n|:--|:--|\n",
        escape(&input.title),
        escape(&input.run_id),
        escape(&input.dataset),
        env!("CARGO_PKG_VERSION"),
        input_sha256
    );
    for (k, v) in &input.provenance {
        out.push_str(&format!("| {} | `{}` |\n", escape(k), escape(v)));
    }
    out.push_str(&format!("| plot font | `{}` |\n", rendered.font.display()));

    out.push_str("\n## Tables\n\n| Table | Built from | Files |\n|:--|:--|:--|\n");
    for t in &rendered.tables {
        out.push_str(&format!(
            "| {} | {} | {} · {} · {} · {} |\n",
            escape(&t.caption),
            t.built_from,
            link(&t.markdown),
            link(&t.latex),
            link(&t.csv),
            link(&t.parquet)
        ));
    }
    out.push_str(&format!(
        "\nClaims: {} (published numbers beside this run's; `paper-figures/claims.yaml`).\n",
        link(&rendered.claims)
    ));

    out.push_str("\n## Figures\n");
    for f in &rendered.figures {
        out.push_str(&format!(
            "\n### {}\n\n![{}]({})\n\nFiles: {} · {}. Built from: {}.\n",
            escape(&f.title),
            escape(&f.stem),
            name(&f.files.png),
            link(&f.files.png),
            link(&f.files.svg),
            f.built_from
        ));
        if !f.skipped.is_empty() {
            out.push_str("\nNot shown:\n\n");
            for s in &f.skipped {
                out.push_str(&format!("- {}\n", escape(s)));
            }
        }
    }
    if !rendered.not_drawn.is_empty() {
        out.push_str("\n## Figures not drawn\n\n");
        for (stem, reasons) in &rendered.not_drawn {
            out.push_str(&format!("- `{stem}`: {}\n", escape(&reasons.join("; "))));
        }
    }
    out
}
