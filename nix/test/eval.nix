# Evaluates nix/module.nix and nix/package.nix without nixpkgs (CI has Debian's nix-bin and no
# channels): a small stand-in for the parts of `lib`, `pkgs` and the module system they use.
#   nix-instantiate --eval --strict --json nix/test/eval.nix
# prints one JSON object per scenario; test/unit/nix/module.test.ts asserts on it.
let
  fakeStore = name: "/nix/store/00000000000000000000000000000000-${name}";
  absent = { _type = "absent"; };

  types = {
    bool = { name = "bool"; check = builtins.isBool; };
    str = { name = "str"; check = builtins.isString; };
    path = { name = "path"; check = v: builtins.isPath v || (builtins.isString v && builtins.substring 0 1 v == "/"); };
    package = { name = "package"; check = v: builtins.isAttrs v && v ? outPath; };
    ints.unsigned = { name = "unsigned int"; check = v: builtins.isInt v && v >= 0; };
    listOf = t: { name = "list of ${t.name}"; check = v: builtins.isList v && builtins.all t.check v; };
    attrsOf = t: { name = "attribute set of ${t.name}"; check = v: builtins.isAttrs v && builtins.all t.check (builtins.attrValues v); };
    nullOr = t: { name = "null or ${t.name}"; check = v: v == null || t.check v; };
    enum = vs: { name = "one of ${builtins.toJSON vs}"; check = v: builtins.elem v vs; };
    json = { name = "JSON value"; check = v: builtins.isAttrs v || builtins.isList v || builtins.isString v || builtins.isInt v || builtins.isBool v || builtins.isFloat v || v == null; };
  };

  lib = rec {
    inherit types;
    mkOption = o: o // { _type = "option"; };
    mkEnableOption = d: mkOption { type = types.bool; default = false; description = "Whether to enable ${d}."; };
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    optional = c: x: if c then [ x ] else [ ];
    optionals = c: xs: if c then xs else [ ];
    optionalString = c: s: if c then s else "";
    any = builtins.any;
    escapeShellArg = a: if builtins.match "[[:alnum:],._+:@%/-]+" a == null then "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] a}'" else a;
    escapeShellArgs = as: builtins.concatStringsSep " " (map escapeShellArg as);
    importJSON = p: builtins.fromJSON (builtins.readFile p);
    cleanSource = p: p;
    fakeHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    makeBinPath = ps: builtins.concatStringsSep ":" (map (p: "${p}/bin") ps);
    licenses.mit = "MIT";
    platforms.linux = [ "x86_64-linux" "aarch64-linux" ];
    recursiveUpdate = a: b: a // builtins.mapAttrs (n: v: if builtins.isAttrs v && a ? ${n} && builtins.isAttrs a.${n} && !(v ? outPath) then recursiveUpdate a.${n} v else v) b;
  };

  pkgs = rec {
    formats.json = { }: {
      type = types.json;
      generate = name: value: { outPath = fakeStore name; text = builtins.toJSON value; };
    };
    systemd = fakeStore "systemd";
    iproute2 = fakeStore "iproute2";
    nftables = fakeStore "nftables";
    util-linux = fakeStore "util-linux";
    coreutils = fakeStore "coreutils";
    lxc = fakeStore "lxc";
    libvirt = fakeStore "libvirt";
    nodejs_20 = fakeStore "nodejs";
    makeWrapper = fakeStore "make-wrapper";
    buildNpmPackage = a: a // { outPath = fakeStore "${a.pname}-${a.version}"; };
    callPackage = path: over:
      let f = import path; in f (builtins.intersectAttrs (builtins.functionArgs f) (pkgs // { inherit lib; }) // over);
  };

  # the module system, reduced to: option defaults, user values checked against option types, mkIf
  isOption = o: builtins.isAttrs o && (o._type or null) == "option";
  defaultsOf = opts: builtins.mapAttrs (_: o: if isOption o then o.default or null else defaultsOf o) opts;
  typeErrors = prefix: opts: user: builtins.concatLists (builtins.attrValues (builtins.mapAttrs (n: v:
    if !(opts ? ${n}) then [ "${prefix}${n}: no such option" ]
    else if isOption opts.${n} then (if opts.${n}.type.check v then [ ] else [ "${prefix}${n}: not a ${opts.${n}.type.name}" ])
    else typeErrors "${prefix}${n}." opts.${n} v) user));
  resolve = v:
    if builtins.isAttrs v then
      (if (v._type or null) == "if" then (if v.condition then resolve v.content else absent)
       else if v ? outPath then v
       else filterAbsent (builtins.mapAttrs (_: resolve) v))
    else if builtins.isList v then map resolve v
    else v;
  filterAbsent = a: builtins.removeAttrs a (builtins.filter (n: builtins.isAttrs a.${n} && (a.${n}._type or null) == "absent") (builtins.attrNames a));

  host = {
    virtualisation.vswitch = { enable = true; package = fakeStore "openvswitch"; };
    virtualisation.lxc.enable = true;
    virtualisation.libvirtd.enable = false;
  };

  evalModule = user:
    let
      m = import ../module.nix { inherit config pkgs lib; };
      config = lib.recursiveUpdate (lib.recursiveUpdate host { services.opd = defaultsOf m.options.services.opd; }) user;
      out = (resolve' m.config);
      resolve' = v: let r = resolve v; in if (r._type or null) == "absent" then { } else r;
      errors = typeErrors "services.opd." m.options.services.opd (user.services.opd or { });
      failed = map (a: a.message) (builtins.filter (a: !a.assertion) (out.assertions or [ ]));
      svc = out.systemd.services.opd or null;
      etc = (out.environment or { }).etc or { };
    in
    if errors != [ ] then { typeErrors = errors; } else {
      assertions = failed;
      enabled = out != { };
      service = if svc == null then null else svc // {
        reloadTriggers = map toString svc.reloadTriggers;
        path = map toString svc.path;
        serviceConfig = svc.serviceConfig // { ExecStart = toString svc.serviceConfig.ExecStart; };
      };
      stateJson = if etc ? "opd/state.json" then etc."opd/state.json".source.text else null;
      statePath = if etc ? "opd/state.json" then toString etc."opd/state.json".source else null;
      dbusPackages = map toString (out.services.dbus.packages or [ ]);
      bootService = let b = out.systemd.services.opd-boot or null; in if b == null then null else b // {
        path = map toString b.path;
        serviceConfig = b.serviceConfig // { ExecStart = toString b.serviceConfig.ExecStart; };
      };
    };

  # op-dbus's seed configuration (services.op-dbus renamed, `mode` and `stateConfig` kept): OVS and systemd
  opdbusStyle = {
    services.opd = {
      enable = true;
      mode = "full";
      stateConfig = {
        ovs.bridges = {
          ovsbr0.ports.eth0 = { };
          mesh.ports = { };
        };
        systemd.units."openvswitch-switch.service" = { active_state = "active"; enabled = true; };
      };
    };
  };
  pkg = pkgs.callPackage ../package.nix { };
in
{
  package = { inherit (pkg) pname version npmBuildScript postInstall; name = toString pkg; mainProgram = pkg.meta.mainProgram; };
  disabled = evalModule { };
  state = evalModule {
    services.opd = {
      enable = true;
      state.ovs.bridges.ovsbr0.ports = { vi100 = { type = "internal"; tag = 10; }; };
      resync = 120;
      allowDestroy = true;
      extraArgs = [ "--backoff-cap" "60" ];
    };
  };
  opdbus = evalModule opdbusStyle;
  stateFile = evalModule { services.opd = { enable = true; stateFile = "/etc/opd/state.yaml"; }; };
  noVswitch = evalModule (lib.recursiveUpdate opdbusStyle { virtualisation.vswitch.enable = false; });
  both = evalModule { services.opd = { enable = true; stateFile = "/etc/opd/state.yaml"; state.ovs.bridges.b.ports = { }; }; };
  nothing = evalModule { services.opd.enable = true; };
  badType = evalModule { services.opd = { enable = true; resync = "5 min"; }; };
  fleet = evalModule { services.opd = { enable = true; fleet = { enable = true; etcd = [ "https://10.0.0.1:2379" "https://10.0.0.2:2379" ]; host = "kvm-07"; labels = { role = "kvm"; rack = "b2"; }; user = "opd-host-kvm-07"; passwordFile = "/run/keys/opd-etcd"; }; }; };
  fleetNoEtcd = evalModule { services.opd = { enable = true; fleet.enable = true; }; };
}
