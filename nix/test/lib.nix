# A model of nixpkgs' `lib` and module system (lib.evalModules) for CI, which has Debian's
# nix-bin but no nixpkgs. It is written from nixpkgs' lib/modules.nix, lib/types.nix and
# lib/options.nix and keeps the semantics nix/module.nix depends on:
# - laziness: a value is merged and type-checked only when forced; `mkIf` conditions are not
#   evaluated to push definitions down, so `config = mkIf cfg.enable { … }` does not recurse;
# - a definition without a declared option is an error anywhere ("The option `…' does not
#   exist."), except inside a submodule with a freeformType;
# - mkIf / mkMerge / mkOverride (mkDefault, mkForce) with priorities, option defaults at
#   priority 1500, `apply`;
# - types merge as nixpkgs' do: attrsOf merges deeply, listOf concatenates, str/bool/int/enum
#   must agree, either/oneOf pick the first type all definitions fit, nullOr, submodule with
#   freeformType (unmatched definitions merged by the freeform type);
# - doRename (mkRenamedOptionModule, mkAliasOptionModule) and mkRemovedOptionModule, with the
#   renamed option carrying the target's type and the warning texts of nixpkgs.
# Not modelled: disabledModules, option documentation, _module.args beyond what is passed in.
let
  b = builtins;
  lib = rec {
  # ------------------------------------------------------------------ trivial / lists / attrs
  id = x: x;
  const = x: _: x;
  isFunction = f: b.isFunction f || (b.isAttrs f && f ? __functor);
  functionArgs = f: if f ? __functor then f.__functionArgs or (functionArgs (f.__functor f)) else b.functionArgs f;
  optional = c: x: if c then [ x ] else [ ];
  optionals = c: xs: if c then xs else [ ];
  optionalAttrs = c: a: if c then a else { };
  optionalString = c: s: if c then s else "";
  concatMap = f: xs: b.concatLists (map f xs);
  concatLists = b.concatLists;
  foldl' = b.foldl';
  any = b.any;
  all = b.all;
  elem = b.elem;
  filter = b.filter;
  head = b.head;
  last = xs: b.elemAt xs (b.length xs - 1);
  count = p: xs: b.length (b.filter p xs);
  imap1 = f: xs: b.genList (i: f (i + 1) (b.elemAt xs i)) (b.length xs);
  findFirst = p: d: xs: let r = b.filter p xs; in if r == [ ] then d else b.head r;
  unique = foldl' (acc: x: if b.elem x acc then acc else acc ++ [ x ]) [ ];
  mapAttrs = b.mapAttrs;
  attrNames = b.attrNames;
  attrValues = b.attrValues;
  filterAttrs = p: a: b.listToAttrs (b.concatMap (n: if p n a.${n} then [ { name = n; value = a.${n}; } ] else [ ]) (b.attrNames a));
  mapAttrsToList = f: a: map (n: f n a.${n}) (b.attrNames a);
  zipAttrsWith = f: sets: b.listToAttrs (map (n: { name = n; value = f n (b.catAttrs n sets); }) (unique (b.concatMap b.attrNames sets)));
  setAttrByPath = path: v: if path == [ ] then v else { ${b.head path} = setAttrByPath (b.tail path) v; };
  attrByPath = path: d: a: if path == [ ] then a else if b.isAttrs a && a ? ${b.head path} then attrByPath (b.tail path) d a.${b.head path} else d;
  getAttrFromPath = path: a: attrByPath path (throw "cannot find attribute `${b.concatStringsSep "." path}'") a;
  recursiveUpdate = l: r: l // b.mapAttrs (n: v: if b.isAttrs v && b.isAttrs (l.${n} or null) && !(v ? outPath) then recursiveUpdate l.${n} v else v) r;
  mapAttrsRecursiveCond = cond: f: set:
    let recurse = path: s: b.mapAttrs (n: v: if b.isAttrs v && cond v then recurse (path ++ [ n ]) v else f (path ++ [ n ]) v) s;
    in recurse [ ] set;
  concatStringsSep = b.concatStringsSep;
  concatMapStringsSep = sep: f: xs: b.concatStringsSep sep (map f xs);
  replaceStrings = b.replaceStrings;
  hasPrefix = p: s: b.substring 0 (b.stringLength p) s == p;
  isDerivation = v: b.isAttrs v && (v.type or null) == "derivation";
  isStringLike = v: b.isString v || b.isPath v || (b.isAttrs v && (v ? outPath || v ? __toString));
  escapeShellArg = a: let s = toString a; in if b.match "[[:alnum:],._+:@%/-]+" s == null then "'${b.replaceStrings [ "'" ] [ "'\\''" ] s}'" else s;
  escapeShellArgs = as: b.concatStringsSep " " (map escapeShellArg as);
  importJSON = p: b.fromJSON (b.readFile p);
  cleanSource = p: p;
  cleanSourceWith = { src, filter ? _: _: true, name ? null }: src;
  fakeHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  makeBinPath = ps: b.concatStringsSep ":" (map (p: "${p}/bin") ps);
  licenses.mit = { spdxId = "MIT"; };
  platforms.linux = [ "x86_64-linux" "aarch64-linux" ];
  literalExpression = text: { _type = "literalExpression"; inherit text; };
  showOption = parts: b.concatStringsSep "." parts;
  showFiles = files: b.concatStringsSep ", " (map (f: "`${toString f}'") files);
  showDefs = defs: b.concatStringsSep "" (map (d: "\n- In `${toString d.file}': ${b.toJSON (d.value or null)}") defs);

  # ------------------------------------------------------------------ properties
  mkIf = condition: content: { _type = "if"; inherit condition content; };
  mkMerge = contents: { _type = "merge"; inherit contents; };
  mkOverride = priority: content: { _type = "override"; inherit priority content; };
  mkOptionDefault = mkOverride 1500;
  mkDefault = mkOverride 1000;
  mkForce = mkOverride 50;
  defaultPriority = 100;

  pushDownProperties = cfg:
    if (cfg._type or "") == "merge" then concatMap pushDownProperties cfg.contents
    else if (cfg._type or "") == "if" then map (b.mapAttrs (_: v: mkIf cfg.condition v)) (pushDownProperties cfg.content)
    else if (cfg._type or "") == "override" then map (b.mapAttrs (_: v: mkOverride cfg.priority v)) (pushDownProperties cfg.content)
    else [ cfg ];

  dischargeProperties = def:
    if (def._type or "") == "merge" then concatMap dischargeProperties def.contents
    else if (def._type or "") == "if" then
      (if b.isBool def.condition then (if def.condition then dischargeProperties def.content else [ ])
       else throw "`mkIf' called with a non-Boolean condition")
    else [ def ];

  filterOverrides' = defs:
    let
      getPrio = def: if (def.value._type or "") == "override" then def.value.priority else defaultPriority;
      highestPrio = foldl' (p: d: let q = getPrio d; in if q < p then q else p) 9999 defs;
      strip = def: if (def.value._type or "") == "override" then def // { value = def.value.content; } else def;
    in { values = concatMap (d: if getPrio d == highestPrio then [ (strip d) ] else [ ]) defs; inherit highestPrio; };

  # ------------------------------------------------------------------ options
  isOption = v: b.isAttrs v && (v._type or "") == "option";
  mkOption = attrs: attrs // { _type = "option"; };
  mkEnableOption = name: mkOption { type = types.bool; default = false; example = true; description = "Whether to enable ${name}."; };

  mergeEqualOption = loc: defs:
    if defs == [ ] then throw "Cannot merge definitions of `${showOption loc}' without any definitions"
    else (foldl' (first: def: if def.value != first.value then throw "The option `${showOption loc}' has conflicting definition values:${showDefs [ first def ]}" else first) (b.head defs) (b.tail defs)).value;
  mergeOneOption = loc: defs:
    if defs == [ ] then throw "Cannot merge definitions of `${showOption loc}' without any definitions"
    else if b.length defs != 1 then mergeEqualOption loc defs
    else (b.head defs).value;
  mergeDefaultOption = loc: defs:
    let list = map (d: d.value) defs; in
    if b.length list == 1 then b.head list
    else if all isFunction list then x: mergeDefaultOption loc (map (f: { value = f x; }) defs)
    else if all b.isList list then b.concatLists list
    else if all b.isAttrs list then foldl' (x: y: x // y) { } list
    else if all b.isBool list then any id list
    else if all b.isString list then b.concatStringsSep "" list
    else if all b.isInt list && all (x: x == b.head list) list then b.head list
    else throw "Cannot merge definitions of `${showOption loc}'.${showDefs defs}";

  mergeDefinitions = loc: type: defs: rec {
    defsFinal' =
      let discharged = concatMap (def: map (value: { inherit (def) file; inherit value; }) (dischargeProperties def.value)) defs;
      in filterOverrides' discharged;
    defsFinal = defsFinal'.values;
    isDefined = defsFinal != [ ];
    mergedValue =
      if isDefined then
        (if all (def: type.check def.value) defsFinal then type.merge loc defsFinal
         else let bad = findFirst (def: !type.check def.value) null defsFinal; in
           throw "A definition for option `${showOption loc}' is not of type `${type.description}'. Definition values:${showDefs [ bad ]}")
      else throw "The option `${showOption loc}' is used but not defined.";
    optionalValue = if isDefined then { value = mergedValue; } else { };
  };

  # ------------------------------------------------------------------ types
  mkOptionType = { name, description ? name, check ? (_: true), merge ? mergeDefaultOption, nestedTypes ? { }, getSubModules ? null }:
    { _type = "option-type"; inherit name description check merge nestedTypes getSubModules; };

  types = rec {
    unspecified = mkOptionType { name = "unspecified"; };
    anything = mkOptionType {
      name = "anything"; description = "anything";
      merge = loc: defs:
        let values = map (d: d.value) defs; in
        if all b.isAttrs values then (attrsOf anything).merge loc defs
        else if all b.isList values then mergeEqualOption loc defs
        else mergeEqualOption loc defs;
    };
    bool = mkOptionType { name = "bool"; description = "boolean"; check = b.isBool; merge = mergeEqualOption; };
    int = mkOptionType { name = "int"; description = "signed integer"; check = b.isInt; merge = mergeEqualOption; };
    ints.unsigned = mkOptionType { name = "unsignedInt"; description = "unsigned integer, meaning >=0"; check = x: b.isInt x && x >= 0; merge = mergeEqualOption; };
    float = mkOptionType { name = "float"; description = "floating point number"; check = b.isFloat; merge = mergeEqualOption; };
    str = mkOptionType { name = "str"; description = "string"; check = b.isString; merge = mergeEqualOption; };
    path = mkOptionType {
      name = "path"; description = "path";
      check = x: isStringLike x && b.substring 0 1 (toString x) == "/";
      merge = mergeEqualOption;
    };
    package = mkOptionType { name = "package"; description = "package"; check = x: isDerivation x || (b.isAttrs x && x ? outPath); merge = mergeOneOption; };
    attrs = mkOptionType { name = "attrs"; description = "attribute set"; check = b.isAttrs; merge = loc: foldl' (res: def: res // def.value) { }; };
    uniq = t: t // { merge = mergeOneOption; };
    enum = values: mkOptionType {
      name = "enum"; description = "one of ${concatMapStringsSep ", " b.toJSON values}";
      check = x: b.elem x values; merge = mergeEqualOption;
    };
    nullOr = t: mkOptionType {
      name = "nullOr"; description = "null or ${t.description}";
      check = x: x == null || t.check x;
      merge = loc: defs:
        let nrNulls = count (def: def.value == null) defs; in
        if nrNulls == b.length defs then null
        else if nrNulls != 0 then throw "The option `${showOption loc}' is defined both null and not null, in ${showFiles (map (d: d.file) defs)}."
        else t.merge loc defs;
      nestedTypes.elemType = t;
    };
    either = t1: t2: mkOptionType {
      name = "either"; description = "${t1.description} or ${t2.description}";
      check = x: t1.check x || t2.check x;
      merge = loc: defs:
        let values = map (d: d.value) defs; in
        if all t1.check values then t1.merge loc defs
        else if all t2.check values then t2.merge loc defs
        else mergeOneOption loc defs;
    };
    oneOf = ts: let h = b.head ts; t = b.tail ts; in foldl' either h t;
    listOf = elemType: mkOptionType {
      name = "listOf"; description = "list of ${elemType.description}";
      check = b.isList;
      merge = loc: defs:
        map (x: x.value) (b.filter (x: x ? value) (b.concatLists (imap1 (n: def:
          imap1 (m: v: (mergeDefinitions (loc ++ [ "[definition ${toString n}-entry ${toString m}]" ]) elemType [ { inherit (def) file; value = v; } ]).optionalValue) def.value) defs)));
      nestedTypes.elemType = elemType;
    };
    attrsOf = elemType: mkOptionType {
      name = "attrsOf"; description = "attribute set of ${elemType.description}";
      check = b.isAttrs;
      merge = loc: defs:
        b.mapAttrs (n: v: v.value) (filterAttrs (n: v: v ? value) (zipAttrsWith (name: defs': (mergeDefinitions (loc ++ [ name ]) elemType defs').optionalValue)
          (map (def: b.mapAttrs (n: v: { inherit (def) file; value = v; }) def.value) (concatMap (def: map (value: { inherit (def) file; inherit value; }) (pushDownProperties def.value)) defs))));
      nestedTypes.elemType = elemType;
    };
    lazyAttrsOf = attrsOf;
    # a submodule: its own module evaluation, with freeformType for what has no option
    submoduleWith = { modules, specialArgs ? { } }: mkOptionType {
      name = "submodule"; description = "submodule";
      check = x: b.isAttrs x || isFunction x || b.isPath x;
      merge = loc: defs:
        (evalModules {
          modules = modules ++ map (def: { _file = def.file; imports = [ def.value ]; }) defs;
          prefix = loc;
          inherit specialArgs;
        }).config;
      getSubModules = modules;
    };
    submodule = m: submoduleWith { modules = if b.isList m then m else [ m ]; };
  };

  # ------------------------------------------------------------------ the module system
  unifyModuleSyntax = file: m:
    if m ? config || m ? options then {
      _file = m._file or file;
      imports = m.imports or [ ];
      options = m.options or { };
      config = let c = m.config or { }; in if m ? freeformType then mkMerge [ c { _module.freeformType = m.freeformType; } ] else c;
    } else {
      _file = m._file or file;
      imports = m.imports or [ ];
      options = { };
      config = let c = b.removeAttrs m [ "_file" "key" "imports" "freeformType" "disabledModules" ]; in
        if m ? freeformType then mkMerge [ c { _module.freeformType = m.freeformType; } ] else c;
    };

  # modules are functions (called with config, options, lib and the args; other named arguments
  # come from _module.args), attribute sets or paths; keyed like nixpkgs (paths by path, anonymous
  # modules by their parent's key and position) so that a path imported twice counts once
  collectModules = margs: moduleArgs: modules:
    let
      load = parentKey: parentFile: n: m:
        let
          isPathLike = b.isPath m || b.isString m;
          f = if isPathLike then import m else m;
          key = if isPathLike then toString m else "${parentKey}:anon-${toString n}";
          fargs = functionArgs f;
          extra = b.mapAttrs (name: _: margs.${name} or moduleArgs.${name} or (throw "module ${key} needs the argument `${name}', which nothing provides")) (b.removeAttrs fargs (b.attrNames margs));
          v = if isFunction f then f (margs // extra) else f;
          mod = unifyModuleSyntax (if isPathLike then key else parentFile) v;
        in { inherit key; module = mod; };
      go = parentKey: parentFile: ms: concatMap (x: [ x ] ++ go x.key x.module._file x.module.imports) (imap1 (load parentKey parentFile) ms);
    in map (x: x.module) (b.genericClosure { startSet = go "" "<unknown-file>" modules; operator = _: [ ]; });

  evalModules = { modules, prefix ? [ ], specialArgs ? { }, args ? { } }:
    let
      internalModule = {
        _file = "lib/modules.nix";
        options._module.args = mkOption { type = types.lazyAttrsOf types.unspecified; default = { }; };
        options._module.check = mkOption { type = types.bool; default = true; };
        options._module.freeformType = mkOption { type = types.nullOr (types.uniq types.attrs); default = null; };
        config._module.args = args;
      };
      margs = { inherit lib config options; } // specialArgs;
      collected = collectModules margs config._module.args (modules ++ [ internalModule ]);
      merged = mergeModules prefix (b.foldl' (acc: m: [ m ] ++ acc) [ ] collected);
      options = merged.matchedOptions;
      declaredConfig = mapAttrsRecursiveCond (v: !isOption v) (_: v: v.value) options;
      freeformConfig =
        let defs = map (def: { file = def.file; value = setAttrByPath def.prefix def.value; }) merged.unmatchedDefns;
        in if defs == [ ] then { } else declaredConfig._module.freeformType.merge prefix defs;
      config = if declaredConfig._module.freeformType == null then declaredConfig else recursiveUpdate freeformConfig declaredConfig;
      checkUnmatched =
        if config._module.check && config._module.freeformType == null && merged.unmatchedDefns != [ ] then
          let firstDef = b.head merged.unmatchedDefns; in
          throw "The option `${showOption (prefix ++ firstDef.prefix)}' does not exist. Definition values:${showDefs [ firstDef ]}"
        else null;
    in b.seq checkUnmatched { inherit options; config = b.removeAttrs config [ "_module" ]; inherit (config) _module; };

  mergeModules = prefix: modules:
    mergeModules' prefix modules (concatMap (m: map (config: { file = m._file; inherit config; }) (pushDownProperties m.config)) modules);

  mergeModules' = prefix: options: configs:
    let
      byName = attr: f: modules: foldl' (acc: module: acc // (b.mapAttrs (n: v: (acc.${n} or [ ]) ++ f module v) module.${attr})) { } modules;
      declsByName = byName "options" (module: option: [ { inherit (module) _file; options = option; } ]) options;
      defnsByName = byName "config" (module: value: map (config: { inherit (module) file; inherit config; }) (pushDownProperties value)) configs;
      defnsByName' = byName "config" (module: value: [ { inherit (module) file; inherit value; } ]) configs;
      resultsByName = b.mapAttrs (name: decls:
        let
          loc = prefix ++ [ name ];
          defns = defnsByName.${name} or [ ];
          defns' = defnsByName'.${name} or [ ];
          nrOptions = count (m: isOption m.options) decls;
        in
        if nrOptions == b.length decls then {
          matchedOptions = evalOptionValue loc (mergeOptionDecls loc decls) defns';
          unmatchedDefns = [ ];
        }
        else if nrOptions != 0 then throw "The option `${showOption loc}' is a prefix of options declared elsewhere."
        else mergeModules' loc decls defns) declsByName;
      matchedOptions = b.mapAttrs (n: v: v.matchedOptions) resultsByName;
      unmatchedDefnsByName = b.mapAttrs (n: v: v.unmatchedDefns) resultsByName // b.removeAttrs defnsByName' (b.attrNames matchedOptions);
    in {
      inherit matchedOptions;
      unmatchedDefns = b.concatLists (mapAttrsToList (name: defs: map (def: def // { prefix = [ name ] ++ (def.prefix or [ ]); }) defs) unmatchedDefnsByName);
    };

  mergeOptionDecls = loc: decls:
    foldl' (res: opt:
      if opt.options ? default && res ? default then throw "The option `${showOption loc}' in `${opt._file}' is already declared in ${showFiles res.declarations}."
      else opt.options // res // { declarations = res.declarations ++ [ opt._file ]; }) { declarations = [ ]; } decls;

  evalOptionValue = loc: opt: defs:
    let
      defs' = (optional (opt ? default) { file = b.head opt.declarations; value = mkOptionDefault opt.default; }) ++ defs;
      type = opt.type or types.unspecified;
      res = mergeDefinitions loc type defs';
      value = if opt ? apply then opt.apply res.mergedValue else res.mergedValue;
    in opt // {
      value = b.addErrorContext "while evaluating the option `${showOption loc}':" value;
      inherit (res.defsFinal') highestPrio;
      definitions = map (def: def.value) res.defsFinal;
      files = map (def: def.file) res.defsFinal;
      inherit (res) isDefined;
      inherit type;
    };

  # ------------------------------------------------------------------ renames (lib/modules.nix)
  mkAliasAndWrapDefsWithPriority = wrap: option:
    let prio = option.highestPrio or defaultPriority; defsWithPrio = map (mkOverride prio) option.definitions;
    in mkIf option.isDefined (wrap (mkMerge defsWithPrio));

  doRename = { from, to, visible, warn, use, withPriority ? true }:
    { config, options, ... }:
    let
      fromOpt = getAttrFromPath from options;
      toOf = attrByPath to (abort "Renaming error: option `${showOption to}' does not exist.");
      toType = let opt = attrByPath to { } options; in opt.type or (types.submodule { });
    in {
      options = setAttrByPath from (mkOption {
        inherit visible;
        description = "Alias of `${showOption to}'.";
        apply = x: use (toOf config);
        type = toType;
      });
      config = mkMerge [
        { warnings = optional (warn && fromOpt.isDefined) "The option `${showOption from}' defined in ${showFiles fromOpt.files} has been renamed to `${showOption to}'."; }
        (mkAliasAndWrapDefsWithPriority (setAttrByPath to) fromOpt)
      ];
    };
  mkRenamedOptionModule = from: to: doRename { inherit from to; visible = false; warn = true; use = id; };
  mkAliasOptionModule = from: to: doRename { inherit from to; visible = true; warn = false; use = id; };
  mkRemovedOptionModule = optionName: replacementInstructions:
    { options, ... }: {
      options = setAttrByPath optionName (mkOption {
        visible = false;
        apply = x: throw "The option `${showOption optionName}' can no longer be used since it's been removed. ${replacementInstructions}";
      });
      config.assertions = let opt = getAttrFromPath optionName options; in [ {
        assertion = !opt.isDefined;
        message = "The option definition `${showOption optionName}' in ${showFiles opt.files} no longer has any effect; please remove it.\n${replacementInstructions}";
      } ];
    };

};
in
lib
