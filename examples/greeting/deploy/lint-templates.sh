#!/usr/bin/env bash
# Checks the CloudFormation templates of this directory with cfn-lint (AWS's linter: schema,
# intrinsic functions, IAM policy syntax). cfn-lint comes from PyPI; it is installed into
# target/tools/ when it is not on PATH.
set -euo pipefail

CFN_LINT_VERSION="1.58.0"
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/../../.." && pwd)"

cfn_lint="$(command -v cfn-lint || true)"
if [ -z "$cfn_lint" ]; then
    venv="$repo_root/target/tools/cfn-lint-$CFN_LINT_VERSION"
    if [ ! -x "$venv/bin/cfn-lint" ]; then
        echo "installing cfn-lint (PyPI cfn-lint==$CFN_LINT_VERSION) into $venv" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION"
    fi
    cfn_lint="$venv/bin/cfn-lint"
fi
"$cfn_lint" --version >&2
# --regions: the templates are region-independent; two regions check the ARN formats apply.
"$cfn_lint" --regions us-east-1 eu-west-1 -- "$script_dir"/*.yaml
echo "cfn-lint: $(cd "$script_dir" && echo *.yaml) OK"
