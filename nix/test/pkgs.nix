# A stand-in for the parts of nixpkgs' `pkgs` that nix/module.nix and nix/package.nix use.
# formats.json is modelled on nixpkgs' pkgs/pkgs-lib/formats.nix (its type decides how
# services.opd.state merges); derivations are records whose attributes the tests read.
lib:
let
  fakeStore = name: "/nix/store/00000000000000000000000000000000-${name}";
  drv = name: attrs: attrs // { type = "derivation"; inherit name; outPath = fakeStore name; };
  pkgs = {
    formats.json = { }: {
      type = with lib.types;
        let valueType = nullOr (oneOf [ bool int float str path (attrsOf valueType) (listOf valueType) ]) // { description = "JSON value"; };
        in valueType;
      generate = name: value: drv name { text = builtins.toJSON value; };
    };
    runCommand = name: env: buildCommand: drv name (env // { inherit buildCommand; });
    systemd = drv "systemd" { };
    iproute2 = drv "iproute2" { };
    nftables = drv "nftables" { };
    util-linux = drv "util-linux" { };
    coreutils = drv "coreutils" { };
    lxc = drv "lxc" { };
    libvirt = drv "libvirt" { };
    openvswitch = drv "openvswitch" { };
    nodejs_20 = drv "nodejs" { };
    makeWrapper = drv "make-wrapper" { };
    importNpmLock = { npmRoot }: drv "npm-deps" { npmRoot = toString npmRoot; lock = builtins.fromJSON (builtins.readFile (npmRoot + "/package-lock.json")); };
    buildNpmPackage = a: drv "${a.pname}-${a.version}" a;
  };
  # importNpmLock is a function that also carries npmConfigHook, as in nixpkgs
  importNpmLock' = { __functor = _: pkgs.importNpmLock; npmConfigHook = drv "npm-config-hook" { }; };
  final = pkgs // {
    importNpmLock = importNpmLock';
    callPackage = path: over:
      let f = import path; in f (builtins.intersectAttrs (builtins.functionArgs f) (final // { inherit lib; }) // over);
  };
in
final
